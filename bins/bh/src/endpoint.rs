//! Where the CLI sends its requests: `--api-host`/`--api-port`, else `BH_API_*`, else
//! `BACALHAU_API_*` environment variables, else `127.0.0.1:1234`.

/// The host used when nothing is configured.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// The port used when nothing is configured (Bacalhau's REST port).
pub const DEFAULT_PORT: u16 = 1234;

/// A resolved API endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    /// The base URL, e.g. `http://127.0.0.1:1234`.
    pub fn base_url(&self) -> String {
        format!("{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// Resolves the endpoint from flags and an environment lookup (injected so tests need not touch
/// the process environment).
///
/// The host may be a URL (`http://host:port`, `https://host`); a port in the URL wins over the
/// port setting only when no port was given explicitly at the same or a higher precedence level.
pub fn resolve(
    flag_host: Option<&str>,
    flag_port: Option<u16>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Endpoint, String> {
    let env_nonempty = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let host = flag_host
        .map(str::to_string)
        .or_else(|| env_nonempty("BH_API_HOST"))
        .or_else(|| env_nonempty("BACALHAU_API_HOST"));
    let port = match flag_port {
        Some(p) => Some(p),
        None => match env_nonempty("BH_API_PORT").or_else(|| env_nonempty("BACALHAU_API_PORT")) {
            Some(text) => Some(text.trim().parse::<u16>().map_err(|_| {
                format!("invalid API port '{text}' in the environment: expected a number from 1 to 65535")
            })?),
            None => None,
        },
    };
    let (scheme, host, url_port) = match host {
        Some(h) => split_host(h.trim())?,
        None => ("http".to_string(), DEFAULT_HOST.to_string(), None),
    };
    let default_port = if scheme == "https" && url_port.is_none() && port.is_none() {
        443
    } else {
        DEFAULT_PORT
    };
    Ok(Endpoint {
        scheme,
        host,
        port: port.or(url_port).unwrap_or(default_port),
    })
}

/// Splits `host`, `host:port` or `scheme://host[:port][/]` into its parts.
fn split_host(text: &str) -> Result<(String, String, Option<u16>), String> {
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme, rest)) => {
            let scheme = scheme.to_ascii_lowercase();
            if scheme != "http" && scheme != "https" {
                return Err(format!(
                    "invalid --api-host '{text}': the scheme must be http or https"
                ));
            }
            (scheme, rest)
        }
        None => ("http".to_string(), text),
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(format!("invalid --api-host '{text}': no host name"));
    }
    // Bracketed IPv6 literals keep their colons.
    if let Some(inner) = authority.strip_prefix('[') {
        let (addr, after) = inner
            .split_once(']')
            .ok_or_else(|| format!("invalid --api-host '{text}': unclosed '['"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(parse_port(p, text)?),
            None => None,
        };
        return Ok((scheme, format!("[{addr}]"), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            Ok((scheme, host.to_string(), Some(parse_port(port, text)?)))
        }
        _ => Ok((scheme, authority.to_string(), None)),
    }
}

fn parse_port(port: &str, whole: &str) -> Result<u16, String> {
    port.parse::<u16>()
        .map_err(|_| format!("invalid --api-host '{whole}': bad port '{port}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn defaults_to_localhost_1234() {
        let e = resolve(None, None, env_of(&[])).unwrap();
        assert_eq!(e.base_url(), "http://127.0.0.1:1234");
    }

    #[test]
    fn flags_win_over_bh_env_which_wins_over_bacalhau_env() {
        let env = env_of(&[
            ("BH_API_HOST", "bh-host"),
            ("BH_API_PORT", "2000"),
            ("BACALHAU_API_HOST", "b-host"),
            ("BACALHAU_API_PORT", "3000"),
        ]);
        assert_eq!(
            resolve(Some("flag-host"), Some(9), &env)
                .unwrap()
                .base_url(),
            "http://flag-host:9"
        );
        assert_eq!(
            resolve(None, None, &env).unwrap().base_url(),
            "http://bh-host:2000"
        );
        let env = env_of(&[
            ("BACALHAU_API_HOST", "b-host"),
            ("BACALHAU_API_PORT", "3000"),
        ]);
        assert_eq!(
            resolve(None, None, &env).unwrap().base_url(),
            "http://b-host:3000"
        );
    }

    #[test]
    fn host_may_be_a_url() {
        let e = resolve(Some("http://example.com:8080"), None, env_of(&[])).unwrap();
        assert_eq!(e.base_url(), "http://example.com:8080");
        let e = resolve(Some("https://example.com/"), None, env_of(&[])).unwrap();
        assert_eq!(e.base_url(), "https://example.com:443");
        let e = resolve(Some("http://example.com:8080"), Some(1), env_of(&[])).unwrap();
        assert_eq!(e.port, 1);
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(resolve(Some("ftp://x"), None, env_of(&[])).is_err());
        assert!(resolve(Some("http://x:notaport"), None, env_of(&[])).is_err());
        assert!(resolve(None, None, env_of(&[("BH_API_PORT", "abc")])).is_err());
    }
}
