//! The client side: one task per outgoing request, on a pooled or new connection.

use std::io;
use std::sync::Arc;

use metrics_core::driver::{Endpoint, Exchange, Report, Upstream};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;

use crate::ClientTransport;

/// Bytes read from a kubelet or the apiserver at once.
const READ_BUFFER: usize = 64 * 1024;

/// A plain or TLS client stream.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}
pub(crate) type Stream = Box<dyn Io>;

/// Opens connections to kubelets and the apiserver.
#[derive(Debug)]
pub(crate) struct Connector {
    pub(crate) kubelet: ClientTransport,
    pub(crate) apiserver: ClientTransport,
    pub(crate) authentication: ClientTransport,
    pub(crate) authorization: ClientTransport,
}

impl Connector {
    async fn connect(&self, endpoint: &Endpoint) -> io::Result<Stream> {
        let tcp = TcpStream::connect((endpoint.host.as_str(), endpoint.port)).await?;
        tcp.set_nodelay(true)?;
        let transport = match endpoint.upstream {
            Upstream::Kubelet => &self.kubelet,
            Upstream::Apiserver => &self.apiserver,
            Upstream::Authentication => &self.authentication,
            Upstream::Authorization => &self.authorization,
        };
        match transport {
            ClientTransport::Plain => Ok(Box::new(tcp)),
            ClientTransport::Tls {
                config,
                server_name,
            } => {
                let name = match server_name {
                    Some(name) => name.clone(),
                    None => ServerName::try_from(endpoint.host.clone())
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
                };
                let tls = TlsConnector::from(Arc::clone(config));
                Ok(Box::new(tls.connect(name, tcp).await?))
            }
        }
    }
}

/// Performs `exchange`, reporting its completions and finally handing the connection
/// back when it can carry another request.
pub(crate) async fn exchange(
    mut exchange: Exchange,
    mut pooled: Option<Stream>,
    connector: Arc<Connector>,
    reports: mpsc::Sender<Report<Stream>>,
) {
    let mut buf = vec![0; READ_BUFFER];
    let kept = loop {
        let mut stream = match pooled.take() {
            Some(stream) => stream,
            None => match connector.connect(exchange.endpoint()).await {
                Ok(stream) => stream,
                Err(error) => {
                    let reason = format!("connecting to {}: {error}", exchange.endpoint());
                    exchange.handle_transport_error(&reason);
                    break None;
                }
            },
        };
        let sent = async {
            stream.write_all(exchange.request_bytes()).await?;
            stream.flush().await
        };
        if let Err(error) = sent.await {
            exchange.handle_transport_error(&error.to_string());
        }
        while !exchange.is_finished() {
            match stream.read(&mut buf).await {
                Ok(0) => exchange.feed_eof(),
                Ok(n) => exchange.feed(&buf[..n]),
                Err(error) => exchange.handle_transport_error(&error.to_string()),
            }
            while let Some(completion) = exchange.poll_completion() {
                if reports.send(Report::Completion(completion)).await.is_err() {
                    return;
                }
            }
        }
        if exchange.wants_retry() {
            exchange.retry_on_fresh_connection();
            continue;
        }
        break exchange.reusable().then_some(stream);
    };
    while let Some(completion) = exchange.poll_completion() {
        if reports.send(Report::Completion(completion)).await.is_err() {
            return;
        }
    }
    let finished = Report::Finished {
        key: exchange.key(),
        endpoint: exchange.endpoint().clone(),
        connection: kept,
    };
    let _ = reports.send(finished).await;
}
