//! Template and ISO downloads to secondary storage (the management server's side of
//! registerTemplate): streamed to a file with size and time limits, checksum verified,
//! and refused when the server would have to reach an internal address.
//!
//! The address check is made on what the host name *resolves to*, and the connection goes
//! to exactly the address that was checked (no second lookup an attacker's DNS could
//! answer differently). Every redirect is checked the same way.

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, Uri};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use stratus_core::inventory::{Cidr, ImageFormat};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Limits of one download.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest image accepted, bytes.
    pub max_bytes: u64,
    pub connect_timeout: Duration,
    /// Longest wait for the next piece of the body (or the response head).
    pub idle_timeout: Duration,
    /// Longest the whole download may take.
    pub total_timeout: Duration,
    pub max_redirects: u8,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 50 << 30,
            connect_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            total_timeout: Duration::from_secs(6 * 3600),
            max_redirects: 5,
        }
    }
}

/// `secstorage.allowed.internal.sites`: internal networks downloads may reach.
#[derive(Clone, Debug, Default)]
pub struct AddressPolicy {
    pub allowed: Vec<Cidr>,
}

impl AddressPolicy {
    /// From the setting's text (comma-separated CIDRs; bad entries are ignored, the
    /// core validated them when the setting was changed).
    pub fn from_setting(text: &str) -> AddressPolicy {
        AddressPolicy {
            allowed: text.split(',').filter_map(|c| Cidr::parse(c.trim())).collect(),
        }
    }

    /// Whether the server may connect to `ip`. Public addresses are always allowed;
    /// private, loopback, link-local, shared (100.64/10), unspecified, broadcast and
    /// multicast IPv4 only inside an allowed network; internal IPv6 never.
    pub fn permits(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => !is_internal_v4(v4) || self.allowed.iter().any(|c| c.contains(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => self.permits(IpAddr::V4(v4)),
                None => {
                    let seg0 = v6.segments()[0];
                    !(v6.is_loopback()
                        || v6.is_unspecified()
                        || v6.is_multicast()
                        || (seg0 & 0xfe00) == 0xfc00
                        || (seg0 & 0xffc0) == 0xfe80)
                }
            },
        }
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64)
}

/// CloudStack's `checksum` parameter: plain hex is MD5, or `{SHA-1}`, `{SHA-256}`,
/// `{SHA-512}` (also `{MD5}`) followed by hex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checksum {
    pub algorithm: Algorithm,
    pub hex: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    fn hex_len(self) -> usize {
        match self {
            Algorithm::Md5 => 32,
            Algorithm::Sha1 => 40,
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha1 => "SHA-1",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha512 => "SHA-512",
        }
    }
}

impl Checksum {
    pub fn parse(text: &str) -> Result<Checksum, String> {
        let t = text.trim();
        let (algorithm, hex) = match t.strip_prefix('{').and_then(|r| r.split_once('}')) {
            Some((name, hex)) => {
                let a = match name.to_ascii_uppercase().replace('-', "").as_str() {
                    "MD5" => Algorithm::Md5,
                    "SHA1" => Algorithm::Sha1,
                    "SHA256" => Algorithm::Sha256,
                    "SHA512" => Algorithm::Sha512,
                    _ => {
                        return Err(format!(
                            "checksum algorithm {{{name}}} is not supported; use MD5, SHA-1, SHA-256 or SHA-512"
                        ));
                    }
                };
                (a, hex)
            }
            None => (Algorithm::Md5, t),
        };
        if hex.len() != algorithm.hex_len() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "checksum {text} is not a {} checksum ({} hex digits)",
                algorithm.name(),
                algorithm.hex_len()
            ));
        }
        Ok(Checksum {
            algorithm,
            hex: hex.to_ascii_lowercase(),
        })
    }
}

enum Hasher {
    Md5(Md5),
    Sha1(Sha1),
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    fn new(a: Algorithm) -> Hasher {
        match a {
            Algorithm::Md5 => Hasher::Md5(Md5::new()),
            Algorithm::Sha1 => Hasher::Sha1(Sha1::new()),
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }
    fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(b),
            Hasher::Sha1(h) => h.update(b),
            Hasher::Sha256(h) => h.update(b),
            Hasher::Sha512(h) => h.update(b),
        }
    }
    fn hex(self) -> String {
        let bytes: Vec<u8> = match self {
            Hasher::Md5(h) => h.finalize().to_vec(),
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A finished download.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Downloaded {
    /// Bytes stored.
    pub physical_bytes: u64,
    /// The disk size the image describes (qcow2 header; the file size for raw images).
    pub virtual_bytes: u64,
}

/// Why a download failed; the text is what listTemplates shows as the status.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DownloadError(pub String);

fn fail<T>(msg: impl Into<String>) -> Result<T, DownloadError> {
    Err(DownloadError(msg.into()))
}

/// Parses and checks the URL's form (http or https, a host); no lookup.
pub fn check_url(url: &str) -> Result<Uri, DownloadError> {
    let uri: Uri = url
        .parse()
        .map_err(|_| DownloadError(format!("{url} is not a valid URL")))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return fail(format!("Unsupported url {url}: only http and https URLs are supported")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return fail(format!("{url} has no host"));
    }
    Ok(uri)
}

/// Resolves the URL's host and returns the addresses to connect to, all permitted by
/// `policy`; refuses if any address it resolves to is not (a name with one internal
/// address among public ones is refused too).
pub async fn resolve_checked(uri: &Uri, policy: &AddressPolicy) -> Result<Vec<SocketAddr>, DownloadError> {
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| DownloadError(format!("cannot resolve {host}: {e}")))?
            .collect(),
    };
    if addrs.is_empty() {
        return fail(format!("{host} resolves to no address"));
    }
    if let Some(bad) = addrs.iter().find(|a| !policy.permits(a.ip())) {
        return fail(format!(
            "{host} resolves to {}, an internal address; downloads from it are refused unless \
             secstorage.allowed.internal.sites includes it",
            bad.ip()
        ));
    }
    Ok(addrs)
}

async fn connect(addrs: &[SocketAddr], limits: &Limits) -> Result<TcpStream, DownloadError> {
    let mut last = String::from("no address");
    for a in addrs {
        match tokio::time::timeout(limits.connect_timeout, TcpStream::connect(a)).await {
            Ok(Ok(s)) => return Ok(s),
            Ok(Err(e)) => last = format!("{a}: {e}"),
            Err(_) => last = format!("{a}: connect timed out"),
        }
    }
    fail(format!("cannot connect: {last}"))
}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, DownloadError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    const BUNDLES: &[&str] = &["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"];
    let mut roots = rustls::RootCertStore::empty();
    for path in BUNDLES {
        if let Ok(pem) = std::fs::read(path) {
            for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
                let _ = roots.add(cert);
            }
        }
    }
    if roots.is_empty() {
        return fail("no CA certificates found for https (install ca-certificates)");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DownloadError(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// One GET to one checked address; the response head.
async fn get(uri: &Uri, policy: &AddressPolicy, limits: &Limits) -> Result<Response<Incoming>, DownloadError> {
    let addrs = resolve_checked(uri, policy).await?;
    let tcp = connect(&addrs, limits).await?;
    let host = uri.host().unwrap_or_default().to_string();
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let authority = uri.authority().map_or(host.clone(), |a| a.to_string());
    let req = Request::get(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::USER_AGENT, "stratus-secstorage")
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .map_err(|e| DownloadError(e.to_string()))?;
    let send = async {
        if uri.scheme_str() == Some("https") {
            let name =
                rustls::pki_types::ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_string())
                    .map_err(|e| DownloadError(format!("bad TLS server name {host}: {e}")))?;
            let tls = tokio_rustls::TlsConnector::from(tls_config()?)
                .connect(name, tcp)
                .await
                .map_err(|e| DownloadError(format!("TLS with {host}: {e}")))?;
            send_on(hyper_util::rt::TokioIo::new(tls), req).await
        } else {
            send_on(hyper_util::rt::TokioIo::new(tcp), req).await
        }
    };
    match tokio::time::timeout(limits.idle_timeout, send).await {
        Ok(r) => r,
        Err(_) => fail(format!(
            "no answer from {host} within {} s",
            limits.idle_timeout.as_secs()
        )),
    }
}

async fn send_on<T>(
    io: T,
    req: Request<http_body_util::Empty<hyper::body::Bytes>>,
) -> Result<Response<Incoming>, DownloadError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| DownloadError(format!("HTTP handshake: {e}")))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
        .send_request(req)
        .await
        .map_err(|e| DownloadError(format!("HTTP request: {e}")))
}

/// Downloads `url` to `dest` (through `dest.part`, renamed when complete and verified).
/// `progress(bytes_so_far, total_if_known)` is called as data arrives.
pub async fn download(
    url: &str,
    dest: &Path,
    format: ImageFormat,
    checksum: Option<&Checksum>,
    policy: &AddressPolicy,
    limits: &Limits,
    progress: impl Fn(u64, Option<u64>),
) -> Result<Downloaded, DownloadError> {
    match tokio::time::timeout(
        limits.total_timeout,
        fetch(url, dest, format, checksum, policy, limits, progress),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => {
            let _ = tokio::fs::remove_file(part_path(dest)).await;
            fail(format!(
                "download did not finish within {} s",
                limits.total_timeout.as_secs()
            ))
        }
    }
}

fn part_path(dest: &Path) -> std::path::PathBuf {
    let mut p = dest.as_os_str().to_owned();
    p.push(".part");
    p.into()
}

async fn fetch(
    url: &str,
    dest: &Path,
    format: ImageFormat,
    checksum: Option<&Checksum>,
    policy: &AddressPolicy,
    limits: &Limits,
    progress: impl Fn(u64, Option<u64>),
) -> Result<Downloaded, DownloadError> {
    use http_body_util::BodyExt;
    let mut uri = check_url(url)?;
    let mut redirects = 0;
    let mut resp = loop {
        let resp = get(&uri, policy, limits).await?;
        if !resp.status().is_redirection() {
            break resp;
        }
        redirects += 1;
        if redirects > limits.max_redirects {
            return fail(format!("more than {} redirects", limits.max_redirects));
        }
        let loc = resp
            .headers()
            .get(hyper::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .ok_or_else(|| DownloadError(format!("HTTP {} without a Location", resp.status())))?;
        uri = redirect_target(&uri, loc)?;
    };
    if resp.status() != StatusCode::OK {
        return fail(format!("HTTP {} from {uri}", resp.status()));
    }
    let total = resp
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if total.is_some_and(|t| t > limits.max_bytes) {
        return fail(format!(
            "image is {} bytes; the limit is {}",
            total.unwrap_or(0),
            limits.max_bytes
        ));
    }
    if let Some(dir) = dest.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| DownloadError(format!("cannot create {}: {e}", dir.display())))?;
    }
    let part = part_path(dest);
    let result = async {
        let mut file = tokio::fs::File::create(&part)
            .await
            .map_err(|e| DownloadError(format!("cannot write {}: {e}", part.display())))?;
        let mut hasher = checksum.map(|c| Hasher::new(c.algorithm));
        let mut head: Vec<u8> = Vec::with_capacity(32);
        let mut done: u64 = 0;
        let body = resp.body_mut();
        loop {
            let frame = match tokio::time::timeout(limits.idle_timeout, body.frame()).await {
                Err(_) => return fail(format!("no data for {} s", limits.idle_timeout.as_secs())),
                Ok(None) => break,
                Ok(Some(Err(e))) => return fail(format!("reading the body: {e}")),
                Ok(Some(Ok(f))) => f,
            };
            let Ok(data) = frame.into_data() else { continue };
            done += data.len() as u64;
            if done > limits.max_bytes {
                return fail(format!("image exceeds the limit of {} bytes", limits.max_bytes));
            }
            if head.len() < 32 {
                head.extend_from_slice(&data[..data.len().min(32 - head.len())]);
            }
            if let Some(h) = hasher.as_mut() {
                h.update(&data);
            }
            file.write_all(&data)
                .await
                .map_err(|e| DownloadError(format!("writing {}: {e}", part.display())))?;
            progress(done, total);
        }
        if total.is_some_and(|t| t != done) {
            return fail(format!(
                "connection closed after {done} of {} bytes",
                total.unwrap_or(0)
            ));
        }
        if let (Some(h), Some(want)) = (hasher, checksum) {
            let got = h.hex();
            if got != want.hex {
                return fail(format!(
                    "checksum mismatch: {} of the download is {got}, expected {}",
                    want.algorithm.name(),
                    want.hex
                ));
            }
        }
        let virtual_bytes = virtual_size(format, &head, done)?;
        file.sync_all().await.map_err(|e| DownloadError(e.to_string()))?;
        Ok(Downloaded {
            physical_bytes: done,
            virtual_bytes,
        })
    }
    .await;
    match result {
        Ok(d) => {
            tokio::fs::rename(&part, dest)
                .await
                .map_err(|e| DownloadError(format!("cannot rename to {}: {e}", dest.display())))?;
            Ok(d)
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&part).await;
            Err(e)
        }
    }
}

fn redirect_target(base: &Uri, loc: &str) -> Result<Uri, DownloadError> {
    if loc.contains("://") {
        return check_url(loc);
    }
    let authority = base.authority().map_or("", |a| a.as_str());
    let scheme = base.scheme_str().unwrap_or("http");
    let path = if loc.starts_with('/') {
        loc.to_string()
    } else {
        let dir = base.path().rsplit_once('/').map_or("", |(d, _)| d);
        format!("{dir}/{loc}")
    };
    check_url(&format!("{scheme}://{authority}{path}"))
}

/// A qcow2 image's virtual size from its header (big-endian u64 at offset 24), checking
/// that a QCOW2 template really is one; other formats: the file size.
fn virtual_size(format: ImageFormat, head: &[u8], file_bytes: u64) -> Result<u64, DownloadError> {
    if format != ImageFormat::Qcow2 {
        return Ok(file_bytes);
    }
    if head.len() < 32 || &head[..4] != b"QFI\xfb" {
        return fail("the download is not a QCOW2 image (no QCOW2 header)");
    }
    let mut size = [0u8; 8];
    size.copy_from_slice(&head[24..32]);
    Ok(u64::from_be_bytes(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_in_cloudstack_form() {
        let md5 = "0123456789abcdef0123456789ABCDEF";
        assert_eq!(Checksum::parse(md5).unwrap().algorithm, Algorithm::Md5);
        assert_eq!(Checksum::parse(md5).unwrap().hex, md5.to_ascii_lowercase());
        let sha256 = format!("{{SHA-256}}{}", "a".repeat(64));
        assert_eq!(Checksum::parse(&sha256).unwrap().algorithm, Algorithm::Sha256);
        assert_eq!(
            Checksum::parse(&format!("{{sha-1}}{}", "b".repeat(40)))
                .unwrap()
                .algorithm,
            Algorithm::Sha1
        );
        assert_eq!(
            Checksum::parse(&format!("{{SHA-512}}{}", "c".repeat(128)))
                .unwrap()
                .algorithm,
            Algorithm::Sha512
        );
        assert!(Checksum::parse("abc").is_err(), "too short for MD5");
        assert!(Checksum::parse(&format!("{{SHA-256}}{}", "a".repeat(32))).is_err());
        assert!(Checksum::parse(&format!("{{CRC32}}{}", "a".repeat(8))).is_err());
        assert!(Checksum::parse(&"g".repeat(32)).is_err(), "not hex");
    }

    #[test]
    fn internal_addresses_need_the_setting() {
        let none = AddressPolicy::default();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!none.permits(ip.parse().unwrap()), "{ip} must be refused by default");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(none.permits(ip.parse().unwrap()), "{ip} is public");
        }
        let lo = AddressPolicy::from_setting("127.0.0.0/8, 10.0.0.0/24");
        assert!(lo.permits("127.0.0.1".parse().unwrap()));
        assert!(lo.permits("10.0.0.200".parse().unwrap()));
        assert!(!lo.permits("10.0.1.1".parse().unwrap()));
        assert!(!lo.permits("169.254.169.254".parse().unwrap()));
    }

    #[test]
    fn qcow2_header_gives_the_virtual_size() {
        let mut head = b"QFI\xfb".to_vec();
        head.extend_from_slice(&[0, 0, 0, 3]);
        head.extend_from_slice(&[0; 16]);
        head.extend_from_slice(&(16u64 << 20).to_be_bytes());
        assert_eq!(virtual_size(ImageFormat::Qcow2, &head, 1000).unwrap(), 16 << 20);
        assert!(virtual_size(ImageFormat::Qcow2, b"<html>not an image</html>.......", 32).is_err());
        assert_eq!(virtual_size(ImageFormat::Raw, b"", 4096).unwrap(), 4096);
    }
}
