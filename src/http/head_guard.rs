//! Request heads too large for the facade, answered in FHIR and audited.
//!
//! The HTTP parser underneath actix refuses a request line longer than 64 KiB or a
//! head longer than 128 KiB with a bare 400 or 431, before any handler or middleware
//! runs: no OperationOutcome, no audit event. `GuardedStream` sits between the TCP
//! connection and that parser. It follows the requests on the connection (heads,
//! then bodies by `Content-Length` or chunked framing) and holds each head back until
//! it has seen all of it. A head within the limits goes on unchanged. One beyond
//! them never reaches the parser: in its place the parser gets a small request for
//! the same path (no query) carrying `x-shcr-refused` and the original
//! `Authorization`, which the facade answers with 414 or 431 and an OperationOutcome,
//! audited like any request, and the connection then closes. Anything it cannot
//! follow (a malformed length) it passes through unchanged for the parser to refuse.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_http::body::MessageBody;
use actix_http::{HttpService, KeepAlive, Protocol, Request, Response};
use actix_service::{
    IntoServiceFactory, ServiceFactory, ServiceFactoryExt, fn_service, map_config,
};
use actix_web::dev::{AppConfig, Server};
use actix_web::rt::net::TcpStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Serves the app made by `factory` on `listener` with `workers` threads, as
/// actix-web's `HttpServer` would (HTTP/1.1, the same timeouts), but over
/// `GuardedStream`s. Each worker runs at most `blocking_threads` blocking tasks at
/// once; more wait their turn.
pub fn serve<F, I, S, B>(
    factory: F,
    listener: std::net::TcpListener,
    workers: usize,
    blocking_threads: usize,
) -> io::Result<Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    B: MessageBody + 'static,
{
    let addr = listener.local_addr()?;
    Ok(Server::build()
        .workers(workers)
        .worker_max_blocking_threads(blocking_threads)
        .listen("shcr-facade", listener, move || {
            let app = factory()
                .into_factory()
                .map_err(|e| e.into().error_response());
            fn_service(|io: TcpStream| async move {
                let _ = io.set_nodelay(true);
                let peer = io.peer_addr().ok();
                Ok((GuardedStream::new(io), Protocol::Http1, peer))
            })
            .and_then(
                HttpService::build()
                    .keep_alive(KeepAlive::default())
                    .client_request_timeout(Duration::from_secs(5))
                    .client_disconnect_timeout(Duration::from_secs(1))
                    .local_addr(addr)
                    .finish(map_config(app, |_| AppConfig::default())),
            )
        })?
        .run())
}

/// The header that marks a stand-in for a refused request, naming why.
pub const REFUSED_HEADER: &str = "x-shcr-refused";

/// Why the connection layer refused the request this one stands in for, if it did.
pub fn refusal_of(req: &actix_web::dev::ServiceRequest) -> Option<Refusal> {
    req.headers()
        .get(REFUSED_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(Refusal::parse)
}

/// How large a request head may be.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    /// The request line (method, path and query): longer is 414.
    pub request_line: usize,
    /// The whole head: longer is 431.
    pub head: usize,
    /// Header fields: more is 431.
    pub header_fields: usize,
}

/// Well inside the parser's own limits (64 KiB of URI, 128 KiB of head, 96 fields),
/// so that everything beyond them is caught here first.
pub const LIMITS: HeadLimits = HeadLimits {
    request_line: 16 * 1024,
    head: 64 * 1024,
    header_fields: 64,
};

/// Why a head was refused, as `x-shcr-refused` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    UriTooLong,
    HeadTooLarge,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::UriTooLong => "uri-too-long",
            Refusal::HeadTooLarge => "head-too-large",
        }
    }

    pub fn parse(code: &str) -> Option<Refusal> {
        [Refusal::UriTooLong, Refusal::HeadTooLarge]
            .into_iter()
            .find(|r| r.code() == code)
    }
}

/// Where the next inbound bytes belong.
#[derive(Debug)]
enum Framing {
    /// A request head, held until it is complete.
    Head(Vec<u8>),
    /// This many body bytes still to come.
    Body(u64),
    /// A chunked body: the line being read (a size line, a chunk's end, a trailer).
    ChunkLine(ChunkPart, Vec<u8>),
    /// Chunk data still to come.
    ChunkData(u64),
    /// Framing this stream cannot follow: everything passes unchanged.
    Passthrough,
    /// A head found too large before its end: read to its end (kept in part, for
    /// the path and credentials), then refused.
    Refusing(Refusing),
    /// A head was refused and its stand-in sent: the rest is read and dropped.
    Refused,
}

/// What is kept of a head being refused while the rest of it is read.
#[derive(Debug)]
struct Refusing {
    refusal: Refusal,
    /// The start of the request line (method and path).
    line: Vec<u8>,
    line_done: bool,
    /// The header fields, as far as the head limit.
    fields: Vec<u8>,
    /// Bytes of the line being read (a blank one ends the head).
    current_line: usize,
    /// Bytes of the head read so far; past `DRAIN_CAP` it is refused without its end.
    read: usize,
}

/// How much of a refused head is read looking for its end and credentials.
const DRAIN_CAP: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkPart {
    Size,
    DataEnd,
    Trailer,
}

/// A TCP connection whose request heads are held to `LIMITS`.
pub struct GuardedStream {
    inner: TcpStream,
    framer: Framer,
    /// How much of `framer.released` the parser has read.
    released_at: usize,
}

impl GuardedStream {
    pub fn new(inner: TcpStream) -> GuardedStream {
        GuardedStream {
            inner,
            framer: Framer::new(LIMITS),
            released_at: 0,
        }
    }

    pub fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.inner.peer_addr()
    }
}

/// Follows the requests of one connection and decides what the parser may see.
#[derive(Debug)]
struct Framer {
    framing: Framing,
    /// Bytes released to the parser.
    released: Vec<u8>,
    limits: HeadLimits,
}

impl Framer {
    fn new(limits: HeadLimits) -> Framer {
        Framer {
            framing: Framing::Head(Vec::new()),
            released: Vec::new(),
            limits,
        }
    }

    /// Follows `data` through the framing, releasing what may go on.
    fn feed(&mut self, data: &[u8]) {
        let mut rest = data.to_vec();
        while !rest.is_empty() {
            rest = match std::mem::replace(&mut self.framing, Framing::Passthrough) {
                Framing::Head(mut head) => {
                    let searched_from = head.len().saturating_sub(3);
                    head.extend_from_slice(&rest);
                    match head_end(&head, searched_from) {
                        None => {
                            self.framing = Framing::Head(head);
                            self.judge_partial_head();
                            Vec::new()
                        }
                        Some(end) => {
                            let after = head.split_off(end);
                            match judge_head(&head, self.limits) {
                                Err(refusal) => {
                                    self.refuse(&head, refusal);
                                    Vec::new()
                                }
                                Ok(framing) => {
                                    self.released.extend_from_slice(&head);
                                    self.framing = framing;
                                    after
                                }
                            }
                        }
                    }
                }
                Framing::Body(remaining) => {
                    let take = (remaining as usize).min(rest.len());
                    self.released.extend_from_slice(&rest[..take]);
                    self.framing = match remaining - take as u64 {
                        0 => Framing::Head(Vec::new()),
                        left => Framing::Body(left),
                    };
                    rest.split_off(take)
                }
                Framing::ChunkData(remaining) => {
                    let take = (remaining as usize).min(rest.len());
                    self.released.extend_from_slice(&rest[..take]);
                    self.framing = match remaining - take as u64 {
                        0 => Framing::ChunkLine(ChunkPart::DataEnd, Vec::new()),
                        left => Framing::ChunkData(left),
                    };
                    rest.split_off(take)
                }
                Framing::ChunkLine(part, mut line) => {
                    match rest.iter().position(|&b| b == b'\n') {
                        None => {
                            line.extend_from_slice(&rest);
                            self.released.extend_from_slice(&rest);
                            // A chunk line longer than this is not one to follow.
                            self.framing = match line.len() > 4096 {
                                true => Framing::Passthrough,
                                false => Framing::ChunkLine(part, line),
                            };
                            Vec::new()
                        }
                        Some(at) => {
                            line.extend_from_slice(&rest[..at]);
                            self.released.extend_from_slice(&rest[..=at]);
                            self.framing = next_chunk_framing(part, &line);
                            rest.split_off(at + 1)
                        }
                    }
                }
                Framing::Passthrough => {
                    self.released.extend_from_slice(&rest);
                    Vec::new()
                }
                Framing::Refusing(refusing) => self.read_refused_head(refusing, &rest),
                Framing::Refused => {
                    self.framing = Framing::Refused;
                    Vec::new()
                }
            };
        }
    }

    /// A head still incomplete may already be too long to accept.
    fn judge_partial_head(&mut self) {
        let Framing::Head(head) = &self.framing else {
            return;
        };
        let refusal = match request_line(head) {
            None if head.len() > self.limits.request_line => Some(Refusal::UriTooLong),
            _ if head.len() > self.limits.head => Some(Refusal::HeadTooLarge),
            _ => None,
        };
        if let Some(refusal) = refusal
            && let Framing::Head(head) = std::mem::take(&mut self.framing)
        {
            let refusing = Refusing {
                refusal,
                line: Vec::new(),
                line_done: false,
                fields: Vec::new(),
                current_line: 0,
                read: 0,
            };
            let after = self.read_refused_head(refusing, &head);
            debug_assert!(after.is_empty());
        }
    }

    /// Reads on through a head being refused; at its end (or the drain cap) sends
    /// the stand-in. The bytes after it are dropped with the connection.
    fn read_refused_head(&mut self, mut refusing: Refusing, data: &[u8]) -> Vec<u8> {
        for &byte in data {
            refusing.read += 1;
            let in_fields = refusing.line_done;
            let ended = match byte {
                b'\n' if !refusing.line_done => {
                    refusing.line_done = !refusing.line.is_empty();
                    refusing.current_line = 0;
                    false
                }
                b'\r' | b'\n' if !refusing.line_done => false,
                _ if !refusing.line_done => {
                    if refusing.line.len() < 1024 {
                        refusing.line.push(byte);
                    }
                    false
                }
                b'\n' => {
                    let blank = refusing.current_line == 0;
                    refusing.current_line = 0;
                    blank
                }
                b'\r' => false,
                _ => {
                    refusing.current_line += 1;
                    false
                }
            };
            if in_fields && refusing.fields.len() < self.limits.head {
                refusing.fields.push(byte);
            }
            if ended || refusing.read > DRAIN_CAP {
                let mut head = refusing.line;
                head.extend_from_slice(b"\r\n");
                head.extend_from_slice(&refusing.fields);
                self.refuse(&head, refusing.refusal);
                return Vec::new();
            }
        }
        self.framing = Framing::Refusing(refusing);
        Vec::new()
    }

    /// Releases the stand-in for a refused head; nothing after it reaches the parser.
    fn refuse(&mut self, head: &[u8], refusal: Refusal) {
        let path = request_line(head)
            .and_then(|line| line.split(' ').nth(1))
            .map(|target| target.split('?').next().unwrap_or_default())
            .filter(|path| {
                path.starts_with('/')
                    && path.len() <= 512
                    && path.bytes().all(|b| b.is_ascii_graphic())
            })
            .unwrap_or("/fhir");
        let mut stand_in = format!(
            "GET {path} HTTP/1.1\r\nhost: shcr-facade\r\nconnection: close\r\n{REFUSED_HEADER}: {}\r\n",
            refusal.code()
        );
        for name in ["authorization", "x-request-id"] {
            if let Some(field) = header_field(head, name).filter(|f| f.len() <= 16 * 1024) {
                stand_in.push_str(&field);
                stand_in.push_str("\r\n");
            }
        }
        stand_in.push_str("\r\n");
        self.released.extend_from_slice(stand_in.as_bytes());
        self.framing = Framing::Refused;
    }
}

impl Default for Framing {
    fn default() -> Self {
        Framing::Head(Vec::new())
    }
}

/// Where the head ends (just after its blank line), searching from `from`.
fn head_end(head: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(offset) = head[at..].iter().position(|&b| b == b'\n') {
        let newline = at + offset;
        // Lines may end in CRLF or a bare LF; a blank line ends the head, unless it
        // comes first (empty lines before a request line are allowed and skipped).
        let after = &head[newline + 1..];
        let blank_next = after.starts_with(b"\r\n") || after.starts_with(b"\n");
        let has_request_line = head[..newline].iter().any(|b| !b"\r\n".contains(b));
        if blank_next && has_request_line {
            let length = if after.starts_with(b"\r\n") { 2 } else { 1 };
            return Some(newline + 1 + length);
        }
        at = newline + 1;
    }
    None
}

/// The request line, once it is complete (blank lines before it skipped).
fn request_line(head: &[u8]) -> Option<&str> {
    let start = head.iter().position(|b| !b"\r\n".contains(b))?;
    let end = start + head[start..].iter().position(|&b| b == b'\n')?;
    std::str::from_utf8(&head[start..end])
        .ok()
        .map(|l| l.trim_end_matches('\r'))
}

/// The header fields of a complete head, as text lines.
fn header_lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    let start = head.iter().position(|b| !b"\r\n".contains(b)).unwrap_or(0);
    head[start..]
        .split(|&b| b == b'\n')
        .skip(1)
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
}

/// One header field (`name: value`) of a head, if present whole.
fn header_field(head: &[u8], name: &str) -> Option<String> {
    let head_end = head_end(head, 0).unwrap_or(head.len());
    header_lines(&head[..head_end])
        .filter_map(|l| std::str::from_utf8(l).ok())
        .find(|l| {
            l.split_once(':')
                .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        })
        .filter(|l| {
            l.bytes()
                .all(|b| b.is_ascii_graphic() || b == b' ' || b == b'\t')
        })
        .map(str::to_string)
}

/// Whether a complete head is within the limits, and how its body is framed.
fn judge_head(head: &[u8], limits: HeadLimits) -> Result<Framing, Refusal> {
    let line = request_line(head).unwrap_or_default();
    if line.len() > limits.request_line {
        return Err(Refusal::UriTooLong);
    }
    if head.len() > limits.head || header_lines(head).count() > limits.header_fields {
        return Err(Refusal::HeadTooLarge);
    }
    Ok(body_framing(line, head))
}

/// How the body after a head is framed; anything unclear passes through.
fn body_framing(request_line: &str, head: &[u8]) -> Framing {
    if request_line.starts_with("CONNECT ") || request_line.starts_with("PRI ") {
        return Framing::Passthrough;
    }
    let (mut length, mut chunked, mut unclear) = (None::<u64>, false, false);
    for line in header_lines(head) {
        let Some((name, value)) = std::str::from_utf8(line)
            .ok()
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            match value.parse::<u64>() {
                Ok(n) if length.is_none_or(|l| l == n) => length = Some(n),
                _ => unclear = true,
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
            unclear |= !chunked;
        } else if name.eq_ignore_ascii_case("upgrade") {
            unclear = true;
        }
    }
    match (unclear, chunked, length) {
        (true, _, _) | (false, true, Some(_)) => Framing::Passthrough,
        (false, true, None) => Framing::ChunkLine(ChunkPart::Size, Vec::new()),
        (false, false, Some(n)) if n > 0 => Framing::Body(n),
        (false, false, _) => Framing::Head(Vec::new()),
    }
}

/// What follows a complete line of a chunked body.
fn next_chunk_framing(part: ChunkPart, line: &[u8]) -> Framing {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match part {
        ChunkPart::Size => {
            let size = std::str::from_utf8(line)
                .ok()
                .and_then(|l| l.split(';').next())
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok());
            match size {
                None => Framing::Passthrough,
                Some(0) => Framing::ChunkLine(ChunkPart::Trailer, Vec::new()),
                Some(n) => Framing::ChunkData(n),
            }
        }
        ChunkPart::DataEnd if line.is_empty() => Framing::ChunkLine(ChunkPart::Size, Vec::new()),
        ChunkPart::DataEnd => Framing::Passthrough,
        ChunkPart::Trailer if line.is_empty() => Framing::Head(Vec::new()),
        ChunkPart::Trailer => Framing::ChunkLine(ChunkPart::Trailer, Vec::new()),
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.released_at < this.framer.released.len() {
                let ready = &this.framer.released[this.released_at..];
                let n = ready.len().min(buf.remaining());
                buf.put_slice(&ready[..n]);
                this.released_at += n;
                if this.released_at == this.framer.released.len() {
                    this.framer.released.clear();
                    this.released_at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            // Body bytes and bytes that cannot be followed go straight to the reader;
            // a body's read stops where it ends, so a following head is never
            // released unjudged.
            let direct = match this.framer.framing {
                Framing::Passthrough => Some(buf.remaining()),
                Framing::Body(n) => Some((n as usize).min(buf.remaining())),
                _ => None,
            };
            if let Some(limit) = direct {
                let mut part = buf.take(limit);
                match Pin::new(&mut this.inner).poll_read(cx, &mut part) {
                    Poll::Ready(Ok(())) => {
                        let n = part.filled().len();
                        // SAFETY: `part` filled these bytes of `buf`'s unfilled part.
                        unsafe { buf.assume_init(n) };
                        buf.advance(n);
                        if let Framing::Body(left) = &mut this.framer.framing {
                            *left -= n as u64;
                            if *left == 0 {
                                this.framer.framing = Framing::Head(Vec::new());
                            }
                        }
                        return Poll::Ready(Ok(()));
                    }
                    other => return other,
                }
            }
            let mut scratch = [0u8; 8192];
            let mut read = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if read.filled().is_empty() => {
                    // The client closed: a partial head goes on for the parser to judge.
                    if let Framing::Head(head) = std::mem::take(&mut this.framer.framing) {
                        this.framer.released.extend_from_slice(&head);
                    }
                    this.framer.framing = Framing::Passthrough;
                    if this.framer.released.is_empty() {
                        return Poll::Ready(Ok(()));
                    }
                }
                Poll::Ready(Ok(())) => {
                    this.framer.feed(read.filled());
                }
            }
        }
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: HeadLimits = HeadLimits {
        request_line: 40,
        head: 200,
        header_fields: 4,
    };

    /// Feeds `input` in pieces of `step` bytes; what the parser would receive.
    fn through(input: &[u8], step: usize) -> Vec<u8> {
        let mut framer = Framer::new(SMALL);
        for piece in input.chunks(step) {
            framer.feed(piece);
        }
        framer.released
    }

    #[test]
    fn heads_within_the_limits_and_their_bodies_pass_unchanged() {
        let input = b"POST /fhir/Observation/_search HTTP/1.1\r\ncontent-length: 5\r\n\r\na=b&cGET /fhir/x HTTP/1.1\r\n\r\n";
        for step in [1, 3, 7, 64] {
            assert_eq!(through(input, step), input.to_vec(), "step {step}");
        }
    }

    #[test]
    fn chunked_bodies_are_followed_to_the_next_head() {
        let input = b"POST /a HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
        for step in [1, 5, 64] {
            assert_eq!(through(input, step), input.to_vec(), "step {step}");
        }
        let long = format!(
            "POST /a HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /b?{} HTTP/1.1\r\n\r\n",
            "q".repeat(100)
        );
        let out = String::from_utf8(through(long.as_bytes(), 9)).unwrap();
        assert!(
            out.ends_with("x-shcr-refused: uri-too-long\r\n\r\n"),
            "{out}"
        );
        assert!(!out.contains("qqq"));
    }

    #[test]
    fn a_long_request_line_becomes_a_stand_in_with_its_path_and_credentials() {
        let input = format!(
            "GET /fhir/Observation?patient={} HTTP/1.1\r\nAuthorization: Bearer abc\r\nx-request-id: r-1\r\n\r\n",
            "9".repeat(100)
        );
        for step in [1, 10, 4096] {
            let out = String::from_utf8(through(input.as_bytes(), step)).unwrap();
            assert_eq!(
                out,
                "GET /fhir/Observation HTTP/1.1\r\nhost: shcr-facade\r\nconnection: close\r\nx-shcr-refused: uri-too-long\r\nAuthorization: Bearer abc\r\nx-request-id: r-1\r\n\r\n",
                "step {step}"
            );
        }
        // Nothing after the refused head reaches the parser.
        let followed = input.clone() + "GET /fhir/metadata HTTP/1.1\r\n\r\n";
        let out = String::from_utf8(through(followed.as_bytes(), 7)).unwrap();
        assert!(!out.contains("metadata"), "{out}");
    }

    #[test]
    fn too_many_or_too_long_header_fields_are_refused() {
        let many = "GET /fhir/metadata HTTP/1.1\r\n".to_string() + &"a: b\r\n".repeat(5) + "\r\n";
        let out = String::from_utf8(through(many.as_bytes(), 16)).unwrap();
        assert!(out.contains("x-shcr-refused: head-too-large"), "{out}");
        let long = format!(
            "GET /fhir/metadata HTTP/1.1\r\nx: {}\r\n\r\n",
            "y".repeat(300)
        );
        let out = String::from_utf8(through(long.as_bytes(), 16)).unwrap();
        assert!(out.contains("x-shcr-refused: head-too-large"), "{out}");
        assert!(!out.contains("yyy"));
    }

    #[test]
    fn framing_it_cannot_follow_passes_through() {
        let input =
            b"POST /a HTTP/1.1\r\ncontent-length: x\r\n\r\nanything at all, however long it is";
        assert_eq!(through(input, 4), input.to_vec());
    }
}
