//! The `metrics-server` binary: upstream's flags, then the server (or the demo).

use metrics_server::flags::{self, Mode};
use metrics_server::{logging, run};

fn main() {
    let (options, warnings) = match flags::parse(std::env::args()) {
        Ok(parsed) => parsed,
        Err(e) => {
            // One line naming the flag and the reason, as upstream prints it.
            let code = e.exit_code();
            if code == 0 {
                println!("{e}");
            } else {
                eprintln!("Error: {e}");
            }
            std::process::exit(code);
        }
    };
    if options.show_version {
        println!("metrics-server {}", flags::VERSION);
        return;
    }
    if let Err(e) = logging::init(&options.logging) {
        eprintln!("Error: {e}");
        std::process::exit(1);
    }
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    let result = match &options.mode {
        Mode::Serve => run::prepare(&options)
            .and_then(|prepared| run::run_prepared(prepared, run::termination_signal())),
        Mode::Demo(demo) => metrics_server::demo::run(&options, demo),
    };
    if let Err(e) = result {
        eprintln!("Error: {e}");
        std::process::exit(1);
    }
}
