//! The egress proxy behind the `HTTP` network mode: an HTTP forward proxy (plain requests and `CONNECT`)
//! that lets a workload reach only the job's listed domains.
//!
//! Design: each `HTTP`-mode execution gets its own Docker bridge network created with `internal: true`,
//! so the container has no route out. The executor starts one of these proxies as a tokio task in its own
//! process, listening on that network's gateway address (the host side of the bridge, which the container
//! can reach), and sets `http_proxy`/`https_proxy` (both cases) in the container. The proxy resolves names
//! on the host, so the container needs no DNS. A domain `example.com` allows exactly that host; `.example.com`
//! allows it and every subdomain (as in Bacalhau). Anything else gets `403 Forbidden`. Any port is allowed
//! on a listed domain. Only peers from the execution's own subnet are served.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Largest request head (request line and headers) the proxy accepts.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// How long a client may take to send its request head, and the proxy to reach the upstream.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// The domains a workload may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainAllowList {
    /// Lower-case names; a leading `.` means "this domain and its subdomains".
    entries: Vec<String>,
}

impl DomainAllowList {
    /// Builds a list from a job's `Network.Domains` (`*.example.com` is read as `.example.com`).
    pub fn new<I, S>(domains: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let entries = domains
            .into_iter()
            .map(|d| {
                let d = d.as_ref().trim().trim_end_matches('.').to_ascii_lowercase();
                match d.strip_prefix("*.") {
                    Some(rest) => format!(".{rest}"),
                    None => d,
                }
            })
            .filter(|d| !d.is_empty() && d != ".")
            .collect();
        Self { entries }
    }

    /// Whether `host` (a name or an IP literal, without port) may be reached.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() {
            return false;
        }
        self.entries
            .iter()
            .any(|entry| match entry.strip_prefix('.') {
                Some(base) => host == base || host.ends_with(entry.as_str()),
                None => host == *entry,
            })
    }
}

/// A running proxy; stopped (with all its connections) when dropped.
pub struct EgressProxy {
    address: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for EgressProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Which peers a proxy serves: an IPv4 network and prefix length.
#[derive(Debug, Clone, Copy)]
pub struct PeerSubnet {
    pub network: IpAddr,
    pub prefix_len: u8,
}

impl PeerSubnet {
    /// Parses `a.b.c.d/len` (IPv4 only; anything else yields `None`).
    pub fn parse(cidr: &str) -> Option<Self> {
        let (address, len) = cidr.split_once('/')?;
        let network: IpAddr = address.parse().ok()?;
        let prefix_len: u8 = len.parse().ok()?;
        (network.is_ipv4() && prefix_len <= 32).then_some(Self {
            network,
            prefix_len,
        })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => {
                let mask = if self.prefix_len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix_len))
                };
                u32::from(network) & mask == u32::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Settings shared by all connections of one proxy.
struct ProxyRules {
    allowed: DomainAllowList,
    peers: Option<PeerSubnet>,
    /// Fixed name resolutions, consulted before the host's resolver (tests, split-horizon setups).
    resolve_overrides: BTreeMap<String, IpAddr>,
}

impl EgressProxy {
    /// Starts a proxy on `bind` (port chosen by the system) allowing `allowed`, serving only `peers`
    /// when given.
    pub async fn start(
        bind: IpAddr,
        allowed: DomainAllowList,
        peers: Option<PeerSubnet>,
        resolve_overrides: BTreeMap<String, IpAddr>,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::new(bind, 0)).await?;
        let address = listener.local_addr()?;
        let rules = Arc::new(ProxyRules {
            allowed,
            peers,
            resolve_overrides: resolve_overrides
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
        });
        let task = tokio::spawn(async move {
            // Connections live in the set so that aborting this task closes them all.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, peer)) => {
                            if let Some(subnet) = rules.peers {
                                if !subnet.contains(peer.ip()) {
                                    tracing::warn!(%peer, "egress proxy: refusing a peer from outside the execution network");
                                    continue;
                                }
                            }
                            let rules = rules.clone();
                            connections.spawn(async move {
                                if let Err(e) = serve_connection(stream, &rules).await {
                                    tracing::debug!(%peer, error = %e, "egress proxy connection ended");
                                }
                            });
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "egress proxy: accept failed");
                        }
                    },
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Ok(Self { address, task })
    }

    /// Where the proxy listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

async fn respond(stream: &mut TcpStream, status: &str, reason: &str) -> io::Result<()> {
    let body = format!("{reason}\n");
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Reads until the end of the request head; returns the head and any bytes read past it.
async fn read_head(stream: &mut TcpStream) -> io::Result<Option<(String, Vec<u8>)>> {
    let mut buffer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buffer.split_off(end + 4);
            return Ok(Some((String::from_utf8_lossy(&buffer).into_owned(), rest)));
        }
        if buffer.len() > MAX_HEAD_BYTES {
            return Ok(None);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// Splits `host[:port]` or `[v6]:port`, with `default_port` when absent.
fn split_host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_string(), port.parse().ok()?)),
        None => Some((authority.to_string(), default_port)),
    }
}

async fn connect_upstream(rules: &ProxyRules, host: &str, port: u16) -> io::Result<TcpStream> {
    let connect = async {
        match rules.resolve_overrides.get(&host.to_ascii_lowercase()) {
            Some(ip) => TcpStream::connect(SocketAddr::new(*ip, port)).await,
            None => TcpStream::connect((host, port)).await,
        }
    };
    tokio::time::timeout(HEAD_TIMEOUT, connect)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connecting upstream timed out"))?
}

/// The connection to `host:port` when the job's allow-list admits `host` and it can be reached; otherwise the
/// client has been answered (403 or 502) and there is nothing more to do.
async fn open_upstream(
    client: &mut TcpStream,
    rules: &ProxyRules,
    host: &str,
    port: u16,
) -> io::Result<Option<TcpStream>> {
    if !rules.allowed.allows(host) {
        let reason = format!("bh proxy: domain {host} is not in the job's allowed domains");
        respond(client, "403 Forbidden", &reason).await?;
        return Ok(None);
    }
    match connect_upstream(rules, host, port).await {
        Ok(upstream) => Ok(Some(upstream)),
        Err(e) => {
            let reason = format!("bh proxy: cannot reach {host}:{port}: {e}");
            respond(client, "502 Bad Gateway", &reason).await?;
            Ok(None)
        }
    }
}

async fn serve_connection(mut client: TcpStream, rules: &ProxyRules) -> io::Result<()> {
    let Ok(head) = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut client)).await else {
        return respond(
            &mut client,
            "408 Request Timeout",
            "bh proxy: request head too slow",
        )
        .await;
    };
    let Some((head, rest)) = head? else {
        return respond(
            &mut client,
            "400 Bad Request",
            "bh proxy: malformed request",
        )
        .await;
    };
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return respond(
            &mut client,
            "400 Bad Request",
            "bh proxy: malformed request line",
        )
        .await;
    };

    if method.eq_ignore_ascii_case("CONNECT") {
        let Some((host, port)) = split_host_port(target, 443) else {
            return respond(
                &mut client,
                "400 Bad Request",
                "bh proxy: bad CONNECT target",
            )
            .await;
        };
        let Some(mut upstream) = open_upstream(&mut client, rules, &host, port).await? else {
            return Ok(());
        };
        client
            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .await?;
        if !rest.is_empty() {
            upstream.write_all(&rest).await?;
        }
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
        return Ok(());
    }

    // Plain HTTP through a proxy uses the absolute form: `GET http://host[:port]/path HTTP/1.1`.
    let Some(after_scheme) = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("HTTP://"))
    else {
        return respond(
            &mut client,
            "400 Bad Request",
            "bh proxy: only absolute http:// URLs and CONNECT are proxied",
        )
        .await;
    };
    let authority_end = after_scheme
        .find(['/', '?', '#'])
        .unwrap_or(after_scheme.len());
    let authority = &after_scheme[..authority_end];
    // Drop any user info: it names no host.
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let path = match &after_scheme[authority_end..] {
        "" => "/".to_string(),
        p if p.starts_with('/') => p.to_string(),
        p => format!("/{p}"),
    };
    let Some((host, port)) = split_host_port(authority, 80) else {
        return respond(
            &mut client,
            "400 Bad Request",
            "bh proxy: bad URL authority",
        )
        .await;
    };
    let Some(mut upstream) = open_upstream(&mut client, rules, &host, port).await? else {
        return Ok(());
    };
    let mut forwarded = format!("{method} {path} {version}\r\n");
    for header in lines.filter(|l| !l.is_empty()) {
        let name = header.split(':').next().unwrap_or_default().trim();
        if name.eq_ignore_ascii_case("proxy-connection")
            || name.eq_ignore_ascii_case("proxy-authorization")
        {
            continue;
        }
        forwarded.push_str(header);
        forwarded.push_str("\r\n");
    }
    forwarded.push_str("\r\n");
    upstream.write_all(forwarded.as_bytes()).await?;
    if !rest.is_empty() {
        upstream.write_all(&rest).await?;
    }
    // Later requests on this connection go to the same upstream, which was allowed.
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn allow_list_matches_exact_and_suffix_domains() {
        let list = DomainAllowList::new(["crates.io", ".example.com", "*.wild.org", "Upper.NET."]);
        assert!(list.allows("crates.io"));
        assert!(list.allows("CRATES.IO."));
        assert!(!list.allows("static.crates.io"));
        assert!(list.allows("example.com"));
        assert!(list.allows("some.thing.example.com"));
        assert!(!list.allows("badexample.com"));
        assert!(list.allows("a.wild.org"));
        assert!(list.allows("upper.net"));
        assert!(!list.allows(""));
        assert!(!DomainAllowList::new(Vec::<String>::new()).allows("crates.io"));
    }

    #[test]
    fn host_port_splitting() {
        assert_eq!(
            split_host_port("a.com:8080", 80),
            Some(("a.com".into(), 8080))
        );
        assert_eq!(split_host_port("a.com", 443), Some(("a.com".into(), 443)));
        assert_eq!(split_host_port("[::1]:81", 80), Some(("::1".into(), 81)));
        assert_eq!(split_host_port("a.com:x", 80), None);
    }

    #[test]
    fn subnet_membership() {
        let subnet = PeerSubnet::parse("172.18.0.0/16").unwrap();
        assert!(subnet.contains(IpAddr::V4(Ipv4Addr::new(172, 18, 3, 4))));
        assert!(!subnet.contains(IpAddr::V4(Ipv4Addr::new(172, 19, 0, 2))));
        assert!(PeerSubnet::parse("nonsense").is_none());
    }

    /// A one-shot HTTP server answering `body` to whatever it is sent.
    async fn upstream(body: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            }
        });
        address
    }

    async fn exchange(proxy: SocketAddr, request: String) -> String {
        let mut stream = TcpStream::connect(proxy).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        String::from_utf8_lossy(&response).into_owned()
    }

    #[tokio::test]
    async fn forwards_allowed_domains_and_refuses_others() {
        let server = upstream("hello from upstream").await;
        let overrides = BTreeMap::from([("allowed.test".to_string(), server.ip())]);
        let proxy = EgressProxy::start(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            DomainAllowList::new([".allowed.test"]),
            None,
            overrides,
        )
        .await
        .unwrap();
        let port = server.port();

        let ok = exchange(
            proxy.address(),
            format!("GET http://allowed.test:{port}/x HTTP/1.1\r\nHost: allowed.test\r\n\r\n"),
        )
        .await;
        assert!(ok.contains("hello from upstream"), "{ok}");

        let refused = exchange(
            proxy.address(),
            format!("GET http://127.0.0.1:{port}/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
        )
        .await;
        assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");

        let tunnel = exchange(
            proxy.address(),
            format!("CONNECT allowed.test:{port} HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n"),
        )
        .await;
        assert!(
            tunnel.starts_with("HTTP/1.1 200 Connection Established"),
            "{tunnel}"
        );
        assert!(tunnel.contains("hello from upstream"), "{tunnel}");

        let refused_tunnel = exchange(
            proxy.address(),
            "CONNECT evil.example:443 HTTP/1.1\r\n\r\n".to_string(),
        )
        .await;
        assert!(
            refused_tunnel.starts_with("HTTP/1.1 403"),
            "{refused_tunnel}"
        );

        let malformed = exchange(proxy.address(), "garbage\r\n\r\n".to_string()).await;
        assert!(malformed.starts_with("HTTP/1.1 400"), "{malformed}");
    }
}
