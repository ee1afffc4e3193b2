//! Command-line parsing: upstream's defaults, flag forms and start-up error texts.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use metrics_server::flags::{
    self, DemoOptions, FlagError, LogFormat, Mode, Options, Runtime, TlsMinVersion,
};

fn run(args: &[&str]) -> Result<(Options, Vec<String>), FlagError> {
    flags::parse(
        std::iter::once("metrics-server")
            .chain(args.iter().copied())
            .map(str::to_owned),
    )
}

fn ok(args: &[&str]) -> Options {
    match run(args) {
        Ok((o, _)) => o,
        Err(e) => panic!("{args:?} should parse, got: {e}"),
    }
}

fn err(args: &[&str]) -> String {
    match run(args) {
        Ok((o, _)) => panic!("{args:?} should fail, parsed: {o:?}"),
        Err(FlagError::Help(h)) => panic!("{args:?} should fail, got help: {h}"),
        Err(e) => {
            let line = e.to_string();
            assert!(!line.contains('\n'), "one line expected: {line:?}");
            assert_eq!(e.exit_code(), 2);
            line
        }
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn defaults_equal_upstream_binary_defaults() {
    let (o, warnings) = run(&[]).expect("no flags");
    assert!(warnings.is_empty());
    assert_eq!(o.mode, Mode::Serve);
    assert!(!o.show_version);
    assert_eq!(o.metric_resolution, Duration::from_secs(60));
    assert_eq!(o.kubeconfig, None);
    assert_eq!(o.runtime, Runtime::Tokio);

    let k = &o.kubelet;
    assert_eq!(k.port, 10250);
    assert!(!k.use_node_status_port);
    assert_eq!(
        k.preferred_address_types,
        strings(&[
            "Hostname",
            "InternalDNS",
            "InternalIP",
            "ExternalDNS",
            "ExternalIP"
        ])
    );
    assert!(!k.insecure_tls);
    assert_eq!(k.certificate_authority, None);
    assert_eq!(k.client_certificate, None);
    assert_eq!(k.client_key, None);
    assert_eq!(k.request_timeout, Duration::from_secs(10));
    assert!(!k.completely_insecure);
    assert_eq!(k.node_selector, "");
    assert!(!k.prefer_summary_api);
    assert_eq!(k.max_response_bytes, 64 << 20);

    let s = &o.serving;
    assert_eq!(s.bind_address, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert_eq!(s.secure_port, 443);
    assert_eq!(
        s.cert_dir,
        PathBuf::from("apiserver.local.config/certificates")
    );
    assert_eq!(s.tls_cert_file, None);
    assert_eq!(s.tls_private_key_file, None);
    assert_eq!(s.tls_min_version, TlsMinVersion::Tls12);
    assert!(s.tls_cipher_suites.is_empty());
    assert_eq!(s.max_requests_inflight, 400);
    assert_eq!(s.shutdown_delay, Duration::ZERO);
    assert_eq!(s.advertise_address, None);
    assert_eq!(s.external_hostname, None);

    let a = &o.authentication;
    assert_eq!(a.kubeconfig, None);
    assert!(!a.skip_lookup);
    assert!(!a.tolerate_lookup_failure);
    assert_eq!(a.token_webhook_cache_ttl, Duration::from_secs(10));
    assert_eq!(a.client_ca_file, None);
    assert_eq!(a.requestheader.client_ca_file, None);
    assert!(a.requestheader.allowed_names.is_empty());
    assert_eq!(
        a.requestheader.username_headers,
        strings(&["x-remote-user"])
    );
    assert_eq!(a.requestheader.group_headers, strings(&["x-remote-group"]));
    assert_eq!(
        a.requestheader.extra_headers_prefix,
        strings(&["x-remote-extra-"])
    );
    assert!(a.requestheader.uid_headers.is_empty());

    let z = &o.authorization;
    assert_eq!(z.kubeconfig, None);
    assert_eq!(
        z.always_allow_paths,
        strings(&["/healthz", "/readyz", "/livez"])
    );
    assert_eq!(z.webhook_cache_authorized_ttl, Duration::from_secs(10));
    assert_eq!(z.webhook_cache_unauthorized_ttl, Duration::from_secs(10));

    assert_eq!(o.logging.verbosity, 0);
    assert_eq!(o.logging.format, LogFormat::Text);
    assert!(o.profiling, "upstream's --profiling defaults to true");
    assert!(!o.contention_profiling);

    assert_eq!(Options::defaults(), o);
}

#[test]
fn upstream_manifest_args_parse() {
    let o = ok(&[
        "--cert-dir=/tmp",
        "--secure-port=10250",
        "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
        "--kubelet-use-node-status-port",
        "--metric-resolution=15s",
    ]);
    assert_eq!(o.serving.cert_dir, PathBuf::from("/tmp"));
    assert_eq!(o.serving.secure_port, 10250);
    assert_eq!(
        o.kubelet.preferred_address_types,
        strings(&["InternalIP", "ExternalIP", "Hostname"])
    );
    assert!(o.kubelet.use_node_status_port);
    assert_eq!(o.metric_resolution, Duration::from_secs(15));
    // the test overlay adds these
    let o = ok(&[
        "--kubelet-insecure-tls",
        "--node-selector=metrics-server-skip!=true",
        "--metric-resolution=15s",
    ]);
    assert!(o.kubelet.insecure_tls);
    assert_eq!(o.kubelet.node_selector, "metrics-server-skip!=true");
}

#[test]
fn boolean_flag_forms() {
    assert!(ok(&["--kubelet-insecure-tls"]).kubelet.insecure_tls);
    assert!(ok(&["--kubelet-insecure-tls=true"]).kubelet.insecure_tls);
    assert!(ok(&["--kubelet-insecure-tls=True"]).kubelet.insecure_tls);
    assert!(ok(&["--kubelet-insecure-tls=1"]).kubelet.insecure_tls);
    assert!(ok(&["--kubelet-insecure-tls=t"]).kubelet.insecure_tls);
    assert!(!ok(&["--kubelet-insecure-tls=false"]).kubelet.insecure_tls);
    assert!(!ok(&["--kubelet-insecure-tls=0"]).kubelet.insecure_tls);
    assert!(!ok(&["--kubelet-insecure-tls=F"]).kubelet.insecure_tls);
    assert!(!ok(&["--profiling=false"]).profiling);
    assert!(
        ok(&["--authentication-skip-lookup"])
            .authentication
            .skip_lookup
    );
    assert!(
        ok(&["--authentication-tolerate-lookup-failure=true"])
            .authentication
            .tolerate_lookup_failure
    );
    // last one wins, as with pflag
    assert!(
        !ok(&["--kubelet-insecure-tls", "--kubelet-insecure-tls=false"])
            .kubelet
            .insecure_tls
    );
    assert_eq!(
        err(&["--kubelet-insecure-tls=yes"]),
        r#"invalid argument "yes" for "--kubelet-insecure-tls" flag: strconv.ParseBool: parsing "yes": invalid syntax"#
    );
    // a boolean never takes the next argument as its value
    assert_eq!(
        err(&["--kubelet-insecure-tls", "false"]),
        r#"unknown command "false" for "metrics-server""#
    );
}

#[test]
fn value_flag_forms() {
    assert_eq!(
        ok(&["--metric-resolution", "30s"]).metric_resolution,
        Duration::from_secs(30)
    );
    assert_eq!(
        ok(&["--metric-resolution=2m"]).metric_resolution,
        Duration::from_secs(120)
    );
    assert_eq!(ok(&["-l", "a=b"]).kubelet.node_selector, "a=b");
    assert_eq!(ok(&["-la=b"]).kubelet.node_selector, "a=b");
    assert_eq!(ok(&["-l=a=b"]).kubelet.node_selector, "a=b");
    assert_eq!(
        ok(&["--node-selector", "a!=b"]).kubelet.node_selector,
        "a!=b"
    );
    assert_eq!(ok(&["--kubelet-port=0x2802"]).kubelet.port, 10242);
    assert_eq!(
        ok(&["--kubeconfig", "/etc/kube.conf"]).kubeconfig,
        Some(PathBuf::from("/etc/kube.conf"))
    );
    assert_eq!(ok(&["--kubeconfig="]).kubeconfig, None);
    // a value may start with '-' (pflag takes the next argument whatever it is)
    assert_eq!(
        err(&["--kubelet-request-timeout", "-1s"]),
        "kubelet-request-timeout should be positive"
    );
    // the last occurrence wins
    assert_eq!(
        ok(&["--metric-resolution=5s", "--metric-resolution=20s"]).metric_resolution,
        Duration::from_secs(20)
    );
    assert_eq!(
        err(&["--kubeconfig"]),
        "flag needs an argument: --kubeconfig"
    );
    assert_eq!(err(&["-l"]), "flag needs an argument: 'l' in -l");
    assert_eq!(
        ok(&["--bind-address=127.0.0.1"]).serving.bind_address,
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    );
    assert_eq!(
        ok(&["--bind-address=::"]).serving.bind_address.to_string(),
        "::"
    );
    assert_eq!(
        err(&["--bind-address=nope"]),
        r#"invalid argument "nope" for "--bind-address" flag: failed to parse IP: "nope""#
    );
    assert_eq!(
        err(&["--kubelet-port=abc"]),
        r#"invalid argument "abc" for "--kubelet-port" flag: strconv.ParseInt: parsing "abc": invalid syntax"#
    );
    assert_eq!(
        err(&["--kubelet-port=70000"]),
        r#"invalid argument "70000" for "--kubelet-port" flag: must be between 1 and 65535"#
    );
}

#[test]
fn verbosity_forms() {
    assert_eq!(ok(&["-v", "2"]).logging.verbosity, 2);
    assert_eq!(ok(&["-v=3"]).logging.verbosity, 3);
    assert_eq!(ok(&["-v4"]).logging.verbosity, 4);
    assert_eq!(ok(&["--v=5"]).logging.verbosity, 5);
    assert_eq!(ok(&["--v", "6"]).logging.verbosity, 6);
    assert_eq!(
        err(&["--v=x"]),
        r#"invalid argument "x" for "-v, --v" flag: strconv.ParseUint: parsing "x": invalid syntax"#
    );
    assert_eq!(
        err(&["-v=4294967295"]),
        "verbosity: Invalid value: 4294967295: Must be <= 2147483647"
    );
    assert_eq!(
        ok(&["--logging-format=json"]).logging.format,
        LogFormat::Json
    );
    assert_eq!(
        err(&["--logging-format=xml"]),
        r#"format: Invalid value: "xml": Unsupported log format"#
    );
}

#[test]
fn list_flags() {
    let o = ok(&["--kubelet-preferred-address-types=InternalIP"]);
    assert_eq!(o.kubelet.preferred_address_types, strings(&["InternalIP"]));
    // repeated: the first use replaces the default, later ones append
    let o = ok(&[
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-username-headers",
        "X-User,X-Other",
    ]);
    assert_eq!(
        o.authentication.requestheader.username_headers,
        strings(&["X-Remote-User", "X-User", "X-Other"])
    );
    // an empty value is the empty list
    let o = ok(&["--authorization-always-allow-paths="]);
    assert!(o.authorization.always_allow_paths.is_empty());
    let o = ok(&["--requestheader-allowed-names=front-proxy-client,aggregator"]);
    assert_eq!(
        o.authentication.requestheader.allowed_names,
        strings(&["front-proxy-client", "aggregator"])
    );
    // CSV quoting, as pflag's StringSlice
    let o = ok(&[r#"--requestheader-allowed-names="a,b",c"#]);
    assert_eq!(
        o.authentication.requestheader.allowed_names,
        strings(&["a,b", "c"])
    );
    assert_eq!(
        err(&[r#"--requestheader-allowed-names=a"b"#]),
        r#"invalid argument "a\"b" for "--requestheader-allowed-names" flag: parse error on line 1, column 2: bare " in non-quoted-field"#
    );
    let o = ok(&[
        "--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    ]);
    assert_eq!(o.serving.tls_cipher_suites.len(), 2);
}

#[test]
fn go_durations_in_flags() {
    assert_eq!(
        ok(&["--metric-resolution=1.5h"]).metric_resolution,
        Duration::from_secs(5400)
    );
    assert_eq!(
        ok(&["--metric-resolution=2h45m"]).metric_resolution,
        Duration::from_secs(9900)
    );
    assert_eq!(
        ok(&["--metric-resolution=+20s"]).metric_resolution,
        Duration::from_secs(20)
    );
    assert_eq!(
        ok(&["--kubelet-request-timeout=.5s"])
            .kubelet
            .request_timeout,
        Duration::from_millis(500)
    );
    assert_eq!(
        ok(&["--kubelet-request-timeout=1.s"])
            .kubelet
            .request_timeout,
        Duration::from_secs(1)
    );
    assert_eq!(
        ok(&["--kubelet-request-timeout=300ms"])
            .kubelet
            .request_timeout,
        Duration::from_millis(300)
    );
    assert_eq!(
        ok(&["--kubelet-request-timeout=300\u{b5}s"])
            .kubelet
            .request_timeout,
        Duration::from_micros(300)
    );
    assert_eq!(
        ok(&["--kubelet-request-timeout=300us"])
            .kubelet
            .request_timeout,
        Duration::from_micros(300)
    );
    assert_eq!(
        ok(&["--shutdown-delay-duration=20s"])
            .serving
            .shutdown_delay,
        Duration::from_secs(20)
    );
    assert_eq!(
        err(&["--metric-resolution=1d"]),
        r#"invalid argument "1d" for "--metric-resolution" flag: time: unknown unit "d" in duration "1d""#
    );
    assert_eq!(
        err(&["--metric-resolution=15"]),
        r#"invalid argument "15" for "--metric-resolution" flag: time: missing unit in duration "15""#
    );
    assert_eq!(
        err(&["--kubelet-request-timeout=soon"]),
        r#"invalid argument "soon" for "--kubelet-request-timeout" flag: time: invalid duration "soon""#
    );
}

#[test]
fn validation_messages_match_upstream() {
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "--kubelet-certificate-authority=/ca.crt",
                "--kubelet-insecure-tls",
            ],
            "cannot use both --kubelet-certificate-authority and --kubelet-insecure-tls",
        ),
        (
            &["--kubelet-client-key=/k"],
            "need both --kubelet-client-key and --kubelet-client-certificate",
        ),
        (
            &["--kubelet-client-certificate=/c"],
            "need both --kubelet-client-key and --kubelet-client-certificate",
        ),
        (
            &[
                "--kubelet-client-key=/k",
                "--kubelet-client-certificate=/c",
                "--deprecated-kubelet-completely-insecure",
            ],
            "cannot use both --kubelet-client-key and --deprecated-kubelet-completely-insecure",
        ),
        (
            &[
                "--kubelet-insecure-tls",
                "--deprecated-kubelet-completely-insecure",
            ],
            "cannot use both --kubelet-insecure-tls and --deprecated-kubelet-completely-insecure",
        ),
        (
            &[
                "--kubelet-certificate-authority=/ca",
                "--deprecated-kubelet-completely-insecure",
            ],
            "cannot use both --kubelet-certificate-authority and --deprecated-kubelet-completely-insecure",
        ),
        (
            &["--kubelet-request-timeout=0s"],
            "kubelet-request-timeout should be positive",
        ),
        (
            &["--kubelet-request-timeout=-1s"],
            "kubelet-request-timeout should be positive",
        ),
        (
            &["--metric-resolution=5s"],
            "metric-resolution should be a time duration at least 10s, but value 5s provided",
        ),
        (
            &["--metric-resolution=-1m"],
            "metric-resolution should be a time duration at least 10s, but value -1m0s provided",
        ),
        (
            &["--metric-resolution=10s"],
            "metric-resolution should be larger than kubelet-request-timeout, but metric-resolution value 10s kubelet-request-timeout value 10s provided",
        ),
        (
            &["--metric-resolution=15s", "--kubelet-request-timeout=14s"],
            "metric-resolution should be larger than kubelet-request-timeout, but metric-resolution value 15s kubelet-request-timeout value 14s provided",
        ),
        (
            &["--max-requests-inflight=-1"],
            "--max-requests-inflight can not be negative value",
        ),
        (
            &["--shutdown-delay-duration=-1s"],
            "--shutdown-delay-duration can not be negative value",
        ),
        (
            &["--secure-port=70000"],
            "--secure-port 70000 must be between 0 and 65535, inclusive. 0 for turning off secure port",
        ),
        (
            &["--tls-cert-file=/a.crt"],
            "need both --tls-cert-file and --tls-private-key-file",
        ),
        (
            &["--tls-min-version=TLS12"],
            r#"invalid argument "TLS12" for "--tls-min-version" flag: unknown tls version "TLS12""#,
        ),
        (
            &["--tls-cipher-suites=TLS_FOO"],
            r#"invalid argument "TLS_FOO" for "--tls-cipher-suites" flag: Cipher suite TLS_FOO not supported or doesn't exist"#,
        ),
        (
            &["--runtime=async-std"],
            r#"invalid argument "async-std" for "--runtime" flag: must be one of: tokio, smol"#,
        ),
        (
            &["--kubelet-max-response-bytes=0"],
            r#"invalid argument "0" for "--kubelet-max-response-bytes" flag: must be positive"#,
        ),
    ];
    for (args, want) in cases {
        assert_eq!(err(args), *want, "{args:?}");
    }
    // the smallest resolution accepted with the default 10s timeout is just above 11.11s
    ok(&["--metric-resolution=11112ms"]);
    assert!(run(&["--metric-resolution=11111ms"]).is_err());
    // 90% of the resolution exactly equal to the timeout is fine
    ok(&["--metric-resolution=10s", "--kubelet-request-timeout=9s"]);
    // an invalid node selector fails start-up
    let e = err(&["--node-selector=a in (b"]);
    assert_eq!(
        e,
        r#"invalid argument "a in (b" for "-l, --node-selector" flag: unable to parse requirement: found '', expected: ',' or ')'"#
    );
}

#[test]
fn validation_reports_the_first_error_in_upstream_order() {
    // kubelet checks come before the resolution check
    assert_eq!(
        err(&[
            "--metric-resolution=1s",
            "--kubelet-insecure-tls",
            "--kubelet-certificate-authority=/ca",
        ]),
        "cannot use both --kubelet-certificate-authority and --kubelet-insecure-tls"
    );
    // parse errors come before validation, the first bad flag on the line wins
    assert_eq!(
        err(&[
            "--kubelet-port=x",
            "--metric-resolution=1q",
            "--kubelet-insecure-tls",
            "--kubelet-certificate-authority=/ca",
        ]),
        r#"invalid argument "x" for "--kubelet-port" flag: strconv.ParseInt: parsing "x": invalid syntax"#
    );
    assert_eq!(
        err(&["--metric-resolution=1q", "--kubelet-port=x"]),
        r#"invalid argument "1q" for "--metric-resolution" flag: time: unknown unit "q" in duration "1q""#
    );
}

#[test]
fn unknown_flags_fail_like_pflag() {
    assert_eq!(err(&["--no-such-flag"]), "unknown flag: --no-such-flag");
    assert_eq!(err(&["--no-such-flag=1"]), "unknown flag: --no-such-flag");
    assert_eq!(err(&["-x"]), "unknown shorthand flag: 'x' in -x");
    assert_eq!(err(&["-xyz"]), "unknown shorthand flag: 'x' in -xyz");
    assert_eq!(
        err(&["serve"]),
        r#"unknown command "serve" for "metrics-server""#
    );
}

#[test]
fn go_internal_flags_warn_and_are_dropped() {
    let (o, warnings) = run(&[
        "--logtostderr",
        "--alsologtostderr=true",
        "--log_file=/var/log/ms.log",
        "--log-file",
        "/var/log/ms2.log",
        "--vmodule=scraper=4",
        "--kube-api-qps",
        "50",
        "--kube-api-burst=100",
        "--v=2",
        "--audit-log-path=-",
        "--permit-port-sharing",
        "-stderrthreshold=INFO",
        "--metric-resolution=15s",
    ])
    .expect("parses");
    assert_eq!(o.metric_resolution, Duration::from_secs(15));
    assert_eq!(o.logging.verbosity, 2);
    assert_eq!(o.kubelet.node_selector, "", "-stderrthreshold is not -l");
    assert_eq!(warnings.len(), 10, "{warnings:#?}");
    assert!(warnings.iter().any(|w| w.contains("--log_file")));
    assert!(warnings.iter().any(|w| w.contains("--kube-api-qps")));
    assert!(warnings.iter().all(|w| !w.contains('\n')));
    // a value-taking ignored flag at the end still needs its value
    assert_eq!(err(&["--vmodule"]), "flag needs an argument: --vmodule");
    // the value of a real flag is never mistaken for an ignored flag
    assert_eq!(
        ok(&["--kubeconfig", "--logtostderr"]).kubeconfig,
        Some(PathBuf::from("--logtostderr"))
    );
    // after `--` nothing is stripped (and positional arguments are refused)
    assert!(run(&["--", "--logtostderr"]).is_err());
}

#[test]
fn version_skips_validation() {
    let o = ok(&["--version"]);
    assert!(o.show_version);
    let o = ok(&["--version", "--metric-resolution=1s"]);
    assert!(o.show_version);
    assert!(!ok(&["--version=false"]).show_version);
    // parse errors still fail
    assert!(run(&["--version", "--metric-resolution=1x"]).is_err());
    assert!(flags::VERSION.starts_with('v'));
}

#[test]
fn help_is_not_an_error_line() {
    for h in ["--help", "-h"] {
        match run(&[h]) {
            Err(e @ FlagError::Help(_)) => {
                assert_eq!(e.exit_code(), 0);
                let text = e.to_string();
                assert!(text.contains("--metric-resolution"), "{text}");
                assert!(text.contains("--kubelet-insecure-tls"), "{text}");
            }
            other => panic!("{h}: {other:?}"),
        }
    }
}

#[test]
fn own_flags() {
    let o = ok(&[
        "--runtime=smol",
        "--prefer-summary-api",
        "--kubelet-max-response-bytes=8Mi",
    ]);
    assert_eq!(o.runtime, Runtime::Smol);
    assert!(o.kubelet.prefer_summary_api);
    assert_eq!(o.kubelet.max_response_bytes, 8 << 20);
    let o = ok(&["--tls-min-version=VersionTLS13"]);
    assert_eq!(o.serving.tls_min_version, TlsMinVersion::Tls13);
    let (o, warnings) = run(&["--tls-min-version=VersionTLS10"]).expect("parses");
    assert_eq!(o.serving.tls_min_version, TlsMinVersion::Tls12);
    assert_eq!(warnings.len(), 1);
    let o = ok(&[
        "--advertise-address=10.0.0.1",
        "--external-hostname=metrics.example",
    ]);
    assert_eq!(
        o.serving.advertise_address,
        Some("10.0.0.1".parse().expect("ip"))
    );
    assert_eq!(
        o.serving.external_hostname.as_deref(),
        Some("metrics.example")
    );
    let o = ok(&[
        "--tls-cert-file=/tls.crt",
        "--tls-private-key-file=/tls.key",
        "--client-ca-file=/ca.crt",
        "--requestheader-client-ca-file=/front.crt",
        "--authentication-kubeconfig=/authn",
        "--authorization-kubeconfig=/authz",
        "--max-requests-inflight=0",
    ]);
    assert_eq!(o.serving.tls_cert_file, Some(PathBuf::from("/tls.crt")));
    assert_eq!(
        o.serving.tls_private_key_file,
        Some(PathBuf::from("/tls.key"))
    );
    assert_eq!(
        o.authentication.client_ca_file,
        Some(PathBuf::from("/ca.crt"))
    );
    assert_eq!(
        o.authentication.requestheader.client_ca_file,
        Some(PathBuf::from("/front.crt"))
    );
    assert_eq!(o.authentication.kubeconfig, Some(PathBuf::from("/authn")));
    assert_eq!(o.authorization.kubeconfig, Some(PathBuf::from("/authz")));
    assert_eq!(o.serving.max_requests_inflight, 0);
}

#[test]
fn demo_subcommand() {
    let o = ok(&["demo"]);
    assert_eq!(
        o.mode,
        Mode::Demo(DemoOptions {
            nodes: 3,
            pods_per_node: 10,
            seed: 1,
            kubeconfig_out: None,
            exit_after: None,
        })
    );
    let o = ok(&[
        "demo",
        "--runtime",
        "smol",
        "--nodes",
        "50",
        "--pods-per-node=30",
    ]);
    assert_eq!(o.runtime, Runtime::Smol);
    assert_eq!(
        o.mode,
        Mode::Demo(DemoOptions {
            nodes: 50,
            pods_per_node: 30,
            seed: 1,
            kubeconfig_out: None,
            exit_after: None,
        })
    );
    // global flags also work before the subcommand
    let o = ok(&["--runtime=smol", "-v=2", "demo"]);
    assert_eq!(o.runtime, Runtime::Smol);
    assert_eq!(o.logging.verbosity, 2);
    let o = ok(&["demo", "-v", "3", "--metric-resolution=15s"]);
    assert_eq!(o.logging.verbosity, 3);
    assert_eq!(o.metric_resolution, Duration::from_secs(15));
    assert_eq!(
        err(&["demo", "--nodes=0"]),
        r#"invalid argument "0" for "--nodes" flag: must be between 1 and 100000"#
    );
    assert_eq!(err(&["demo", "--bogus"]), "unknown flag: --bogus");
}

#[test]
fn demo_flags_and_defaults() {
    // The demo's own defaults for the scrape loop, unless given.
    let o = ok(&["demo"]);
    assert_eq!(o.metric_resolution, Duration::from_secs(10));
    assert_eq!(o.kubelet.request_timeout, Duration::from_secs(5));
    let o = ok(&[
        "--kubelet-request-timeout=2s",
        "demo",
        "--metric-resolution=30s",
    ]);
    assert_eq!(o.metric_resolution, Duration::from_secs(30));
    assert_eq!(o.kubelet.request_timeout, Duration::from_secs(2));
    let o = ok(&["--metric-resolution=20s", "demo"]);
    assert_eq!(o.metric_resolution, Duration::from_secs(20));
    // Serving keeps upstream's defaults.
    assert_eq!(ok(&[]).metric_resolution, Duration::from_secs(60));

    let o = ok(&[
        "demo",
        "--seed=42",
        "--kubeconfig-out",
        "/tmp/kc",
        "--exit-after=90s",
    ]);
    assert_eq!(
        o.mode,
        Mode::Demo(DemoOptions {
            nodes: 3,
            pods_per_node: 10,
            seed: 42,
            kubeconfig_out: Some(PathBuf::from("/tmp/kc")),
            exit_after: Some(Duration::from_secs(90)),
        })
    );
    // One demo flag leaves the others at their defaults (in release builds too, where
    // clap does not check argument ids).
    let o = ok(&["demo", "--seed", "9"]);
    assert_eq!(
        o.mode,
        Mode::Demo(DemoOptions {
            nodes: 3,
            pods_per_node: 10,
            seed: 9,
            kubeconfig_out: None,
            exit_after: None,
        })
    );
    assert_eq!(
        err(&["demo", "--seed=-1"]),
        r#"invalid argument "-1" for "--seed" flag: must not be negative"#
    );
    assert_eq!(
        err(&["demo", "--exit-after=soon"]),
        r#"invalid argument "soon" for "--exit-after" flag: time: invalid duration "soon""#
    );
}
