//! The `metrics-server` binary. Until the server issue lands it only reports its version.

fn main() {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        None | Some("--version") | Some("version") => {
            println!("metrics-server {}", env!("CARGO_PKG_VERSION"));
        }
        Some(other) => {
            eprintln!(
                "metrics-server: unknown argument {other:?} (only --version is implemented yet)"
            );
            std::process::exit(2);
        }
    }
}
