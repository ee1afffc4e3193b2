//! The adapter over real sockets on 127.0.0.1: TLS handshakes with certificates made
//! here, pipelining, limits, graceful shutdown, and a whole scrape-and-serve round trip
//! against a fake apiserver and kubelet.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics_core::api::discovery::VersionInfo;
use metrics_core::api::dispatch::{Api, ApiConfig};
use metrics_core::driver::{ApiService, ClientConfig, IncomingRequest, ServerConfig};
use metrics_core::engine::{Engine, EngineConfig};
use metrics_core::http::{
    BodyMode, ClientEvent, HeaderMap, Limits, Method, RequestParser, Response, ResponseLimits,
    ResponseParser, ServerEvent,
};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use runtime_tokio::{ClientTransport, RuntimeConfig, run_on};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::{TlsAcceptor, TlsConnector};

type ClientStream = tokio_rustls::client::TlsStream<TcpStream>;

/// A CA, a serving certificate for localhost / 127.0.0.1 and a client certificate.
struct Pki {
    ca: CertificateDer<'static>,
    server: (CertificateDer<'static>, Vec<u8>),
    client: (CertificateDer<'static>, Vec<u8>),
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf = |names: &[&str]| {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        (cert.der().clone(), key.serialize_der())
    };
    Pki {
        ca: ca.der().clone(),
        server: leaf(&["localhost", "127.0.0.1"]),
        client: leaf(&["client"]),
    }
}

fn key(der: &[u8]) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der.to_vec()))
}

fn roots(pki: &Pki) -> Arc<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.clone()).unwrap();
    Arc::new(roots)
}

/// What the server crate builds: ALPN http/1.1, client certificates optional.
fn server_tls(pki: &Pki) -> Arc<rustls::ServerConfig> {
    let verifier = WebPkiClientVerifier::builder(roots(pki))
        .allow_unauthenticated()
        .build()
        .unwrap();
    let mut config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![pki.server.0.clone()], key(&pki.server.1))
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

fn client_tls(pki: &Pki, with_cert: bool) -> Arc<rustls::ClientConfig> {
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots(pki));
    let mut config = if with_cert {
        builder
            .with_client_auth_cert(vec![pki.client.0.clone()], key(&pki.client.1))
            .unwrap()
    } else {
        builder.with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A plain TLS server for the fakes (same certificate as the metrics server).
fn fake_acceptor(pki: &Pki) -> TlsAcceptor {
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![pki.server.0.clone()], key(&pki.server.1))
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

async fn connect(addr: std::net::SocketAddr, tls: &Arc<rustls::ClientConfig>) -> ClientStream {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    TlsConnector::from(Arc::clone(tls))
        .connect(name, tcp)
        .await
        .unwrap()
}

/// One parsed response.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: String,
}

/// Reads one response; bytes after it stay in `pending` (pipelined responses).
async fn read_answer(stream: &mut ClientStream, pending: &mut Vec<u8>) -> Option<Answer> {
    let mut parser = ResponseParser::new(&Method::GET, BodyMode::Buffered, ResponseLimits::DEFAULT);
    let mut head = None;
    let mut body = Vec::new();
    let mut buf = vec![0; 64 * 1024];
    loop {
        while !pending.is_empty() && !parser.is_finished() {
            let byte = pending.remove(0);
            parser.feed(&[byte]);
        }
        while let Some(event) = parser.poll_event() {
            match event {
                ClientEvent::Head(h) => head = Some(h),
                ClientEvent::Body(b) => body = b,
                ClientEvent::Line(_) => {}
                ClientEvent::End { .. } => {
                    let head = head?;
                    return Some(Answer {
                        status: head.status().as_u16(),
                        headers: head.headers().clone(),
                        body: String::from_utf8_lossy(&body).into_owned(),
                    });
                }
                ClientEvent::Error(_) => return None,
            }
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
    }
}

/// Whether the server closed the connection (EOF or reset) with nothing more to say.
async fn closed(stream: &mut ClientStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// Echoes the path and the number of client certificates.
fn echo(request: &IncomingRequest<'_>, body: &mut Vec<u8>) -> Response<()> {
    let certs = request.peer.certificates.len();
    body.extend_from_slice(format!("{} certs={certs}", request.parts.uri.path()).as_bytes());
    Response::new(())
}

type Echo = fn(&IncomingRequest<'_>, &mut Vec<u8>) -> Response<()>;

fn config(pki: &Pki, apiserver_port: u16) -> RuntimeConfig {
    let mut client = ClientConfig::new("test-agent/1".into(), "127.0.0.1".into(), apiserver_port);
    client.kubelet_token = Some(Arc::new(|| Some("kubelet-token".into())));
    client.apiserver_token = Some(Arc::new(|| Some("apiserver-token".into())));
    RuntimeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        server_tls: server_tls(pki),
        kubelet_transport: ClientTransport::Tls {
            config: client_tls(pki, true),
            server_name: None,
        },
        apiserver_transport: ClientTransport::Tls {
            config: client_tls(pki, true),
            server_name: Some(ServerName::try_from("localhost").unwrap()),
        },
        // No delegated authentication here: these tests are about transport.
        authentication_transport: ClientTransport::Plain,
        authorization_transport: ClientTransport::Plain,
        delegation: None,
        server: ServerConfig::DEFAULT,
        client,
        max_connections: 64,
        shutdown_grace: Duration::from_secs(5),
    }
}

fn engine(resolution: Duration, kubelet_port: u16) -> Engine {
    let mut config = EngineConfig::new(resolution, 42);
    config.resolve.kubelet_port = kubelet_port;
    Engine::new(config, runtime_tokio::now())
}

struct Server {
    addr: std::net::SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

async fn start<S>(config: RuntimeConfig, engine: Engine, service: S) -> Server
where
    S: metrics_core::driver::Service + Clone + Send + 'static,
{
    let listener = TcpListener::bind(config.listen).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let task = tokio::spawn(run_on(listener, config, engine, service, shutdown));
    Server { addr, stop, task }
}

impl Server {
    async fn shutdown(self) {
        let _ = self.stop.send(());
        let result = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("run returns within the grace period")
            .expect("run does not panic");
        result.expect("run returns Ok");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_pipelining_keep_alive_client_certificates_and_431() {
    let pki = pki();
    // No apiserver listens on port 1: the engine's lists fail and back off meanwhile.
    let server = start(
        config(&pki, 1),
        engine(Duration::from_secs(15), 1),
        echo as Echo,
    )
    .await;

    // With a client certificate; two pipelined requests in one write.
    let mut conn = connect(server.addr, &client_tls(&pki, true)).await;
    assert_eq!(conn.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    conn.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut pending = Vec::new();
    let a = read_answer(&mut conn, &mut pending).await.unwrap();
    let b = read_answer(&mut conn, &mut pending).await.unwrap();
    assert_eq!((a.status, a.body.as_str()), (200, "/a certs=1"));
    assert_eq!((b.status, b.body.as_str()), (200, "/b certs=1"));
    // Kept alive: a third request on the same connection.
    conn.write_all(b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let c = read_answer(&mut conn, &mut pending).await.unwrap();
    assert_eq!(c.body, "/c certs=1");

    // Without one.
    let mut anonymous = connect(server.addr, &client_tls(&pki, false)).await;
    anonymous
        .write_all(b"GET /who HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let who = read_answer(&mut anonymous, &mut Vec::new()).await.unwrap();
    assert_eq!(who.body, "/who certs=0");
    assert!(closed(&mut anonymous).await);

    // A head over 64 KiB: 431, then the connection closes.
    let mut big = connect(server.addr, &client_tls(&pki, false)).await;
    let mut request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    request.resize(80 * 1024, b'a');
    request.extend_from_slice(b"\r\n\r\n");
    big.write_all(&request).await.unwrap();
    let rejected = read_answer(&mut big, &mut Vec::new()).await.unwrap();
    assert_eq!(rejected.status, 431);
    assert_eq!(rejected.headers["connection"], "close");
    assert!(closed(&mut big).await);

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_an_in_flight_request() {
    let pki = pki();
    let tls = client_tls(&pki, false);
    let server = start(
        config(&pki, 1),
        engine(Duration::from_secs(15), 1),
        echo as Echo,
    )
    .await;

    // An idle kept-alive connection, and one with half a request sent.
    let mut idle = connect(server.addr, &tls).await;
    idle.write_all(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(
        read_answer(&mut idle, &mut Vec::new())
            .await
            .unwrap()
            .status,
        200
    );
    let mut busy = connect(server.addr, &tls).await;
    busy.write_all(b"GET /slow HTTP/1.1\r\nHo").await.unwrap();
    busy.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;

    let addr = server.addr;
    let stop = tokio::spawn(server.shutdown());
    // The idle connection is closed at once; new connections are refused.
    assert!(closed(&mut idle).await);
    assert!(TcpStream::connect(addr).await.is_err());
    // The in-flight request is answered, announcing the close.
    busy.write_all(b"st: x\r\n\r\n").await.unwrap();
    let answer = read_answer(&mut busy, &mut Vec::new()).await.unwrap();
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, "/slow certs=0")
    );
    assert_eq!(answer.headers["connection"], "close");
    assert!(closed(&mut busy).await);
    stop.await.unwrap();
}

// ---------------------------------------------------------------------------------------
// A whole round trip: fake apiserver and kubelet, the real engine and API.
// ---------------------------------------------------------------------------------------

/// Requests a fake saw: (path and query, authorization, user agent).
type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

/// Serves HTTP/1.1 over TLS on 127.0.0.1, answering with `answer(path)`: `Some(body)` is
/// a 200 with that body; `None` starts a chunked stream that never ends (a watch).
async fn fake(
    pki: &Pki,
    answer: impl Fn(&str) -> Option<Vec<u8>> + Send + Sync + 'static,
) -> (u16, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = fake_acceptor(pki);
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, log, answer) = (acceptor.clone(), Arc::clone(&log), Arc::clone(&answer));
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut parser = RequestParser::new(Limits::DEFAULT);
                let mut buf = vec![0; 16 * 1024];
                loop {
                    let n = match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    parser.feed(&buf[..n]);
                    while let Some(ServerEvent::Request { request, .. }) = parser.poll_event() {
                        let header = |name: &str| {
                            request
                                .headers()
                                .get(name)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned()
                        };
                        let target = request.uri().to_string();
                        log.lock().unwrap().push((
                            target.clone(),
                            header("authorization"),
                            header("user-agent"),
                        ));
                        let out = match answer(&target) {
                            Some(body) => {
                                let mut out = format!(
                                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                                    body.len()
                                )
                                .into_bytes();
                                out.extend_from_slice(&body);
                                out
                            }
                            None => b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
                        };
                        if stream.write_all(&out).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (port, seen)
}

fn node_list(kubelet_port: u16) -> Vec<u8> {
    format!(
        r#"{{"kind":"NodeList","apiVersion":"v1","metadata":{{"resourceVersion":"10"}},"items":[{{"metadata":{{"name":"n1","resourceVersion":"10","labels":{{"role":"test"}}}},"status":{{"addresses":[{{"type":"InternalIP","address":"127.0.0.1"}}],"daemonEndpoints":{{"kubeletEndpoint":{{"Port":{kubelet_port}}}}},"conditions":[{{"type":"Ready","status":"True"}}]}}}}]}}"#
    )
    .into_bytes()
}

const POD_LIST: &[u8] = br#"{"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":{"resourceVersion":"11"},"items":[]}"#;

async fn get(addr: std::net::SocketAddr, tls: &Arc<rustls::ClientConfig>, path: &str) -> Answer {
    let mut conn = connect(addr, tls).await;
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n");
    conn.write_all(request.as_bytes()).await.unwrap();
    read_answer(&mut conn, &mut Vec::new()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_a_kubelet_and_serves_node_metrics() {
    let pki = pki();
    let scrapes = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&scrapes);
    let (kubelet_port, kubelet_seen) = fake(&pki, move |path| {
        assert_eq!(path, "/metrics/resource");
        let n = count.fetch_add(1, Ordering::Relaxed);
        let name = if n == 0 {
            "metrics-resource-current-t0.txt"
        } else {
            "metrics-resource-current-t1.txt"
        };
        Some(testdata::fixtures::get(name).unwrap().to_vec())
    })
    .await;
    let (apiserver_port, apiserver_seen) = fake(&pki, move |path| {
        if path.contains("watch=true") {
            None
        } else if path.starts_with("/api/v1/nodes") {
            Some(node_list(kubelet_port))
        } else {
            Some(POD_LIST.to_vec())
        }
    })
    .await;

    let engine = engine(Duration::from_millis(300), kubelet_port);
    let api = Arc::new(Api::new(ApiConfig {
        server_address: "127.0.0.1:443".into(),
        version: VersionInfo::default(),
        release: "v0.8.0".into(),
    }));
    let service = ApiService::new(api, engine.reader(), 7);
    let server = start(config(&pki, apiserver_port), engine, service).await;
    let tls = client_tls(&pki, false);

    // Wait (bounded) until two scrapes made the node servable.
    let mut nodes = None;
    let mut last = None;
    for _ in 0..100 {
        let answer = get(server.addr, &tls, "/apis/metrics.k8s.io/v1beta1/nodes").await;
        if answer.status == 200 && answer.body.contains("\"n1\"") {
            nodes = Some(answer);
            break;
        }
        last = Some(answer);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Some(nodes) = nodes else {
        panic!(
            "no node metrics within 10 s; last answer {last:?}; kubelet saw {:?}; apiserver saw {:?}",
            kubelet_seen.lock().unwrap(),
            apiserver_seen.lock().unwrap()
        );
    };
    assert!(
        nodes.body.contains("\"kind\":\"NodeMetricsList\""),
        "{}",
        nodes.body
    );
    assert!(nodes.body.contains("\"usage\""), "{}", nodes.body);
    assert!(nodes.headers.contains_key("audit-id"));

    let healthz = get(server.addr, &tls, "/healthz").await;
    assert_eq!((healthz.status, healthz.body.as_str()), (200, "ok"));

    // The kubelet and the apiserver saw our credentials and user agent; the engine's
    // watches were made after its lists (on the kept-alive list connections).
    let kubelet = kubelet_seen.lock().unwrap().clone();
    assert!(kubelet.len() >= 2);
    assert!(
        kubelet
            .iter()
            .all(|(_, auth, ua)| auth == "Bearer kubelet-token" && ua == "test-agent/1")
    );
    let apiserver = apiserver_seen.lock().unwrap().clone();
    assert!(
        apiserver
            .iter()
            .all(|(_, auth, _)| auth == "Bearer apiserver-token")
    );
    assert!(
        apiserver
            .iter()
            .any(|(path, _, _)| path.contains("watch=true"))
    );

    server.shutdown().await;
}
