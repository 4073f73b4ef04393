//! A TCP proxy in front of a partner that passes the first request on each
//! connection (and every byte of its answer) and keeps the connection alive, then
//! closes any connection a second request arrives on, unanswered: the moment a
//! server's keep-alive timeout and a client's reuse of the connection meet.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

/// Requests that reached the proxy: passed on, and closed on.
#[derive(Clone, Default)]
pub struct Received(Arc<AtomicUsize>);

impl Received {
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    fn one(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Starts a proxy to `upstream`'s host and port; returns `upstream` with the proxy's
/// address in place of the partner's, and what the proxy has received.
pub async fn closing_on_reuse(upstream: &str) -> (String, Received) {
    let upstream = Url::parse(upstream).expect("an upstream URL");
    let target = format!(
        "{}:{}",
        upstream.host_str().expect("a host"),
        upstream.port_or_known_default().expect("a port")
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut proxied = upstream.clone();
    proxied
        .set_port(Some(listener.local_addr().unwrap().port()))
        .unwrap();
    let received = Received::default();
    let counted = received.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(partner) = TcpStream::connect(&target).await else {
                continue;
            };
            tokio::spawn(pass_one_request(client, partner, counted.clone()));
        }
    });
    (proxied.to_string(), received)
}

async fn pass_one_request(client: TcpStream, partner: TcpStream, received: Received) {
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_partner, mut to_partner) = partner.into_split();
    let answers = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from_partner, &mut to_client).await;
    });
    let Some(request) = one_request(&mut from_client).await else {
        answers.abort();
        return;
    };
    received.one();
    if to_partner.write_all(&request).await.is_err() {
        answers.abort();
        return;
    }
    let mut byte = [0u8; 1];
    if from_client.read(&mut byte).await.unwrap_or(0) > 0 {
        received.one();
    }
    // Dropping every half closes both connections, the second request unanswered.
    answers.abort();
}

/// One HTTP/1.1 request as sent: its head, and as many bytes of body as its
/// `content-length` says (a GET has none).
async fn one_request(from: &mut (impl AsyncRead + Unpin)) -> Option<Vec<u8>> {
    let mut request = Vec::new();
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") {
        if from.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        request.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&request).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |n| n.trim().parse().expect("a content-length"));
    let mut body = vec![0u8; length];
    from.read_exact(&mut body).await.ok()?;
    request.extend(body);
    Some(request)
}
