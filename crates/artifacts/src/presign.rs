//! Presigned URLs: the [`UrlSigner`] that the network uses to hand out upload and download URLs,
//! and the server-side check of the query they carry.
//!
//! A presigned URL is `/v1/artifacts/{id}?method=…&kind=…&visibility=…&expires=…[&retain_until=…]&sig=…`
//! where `sig` is HMAC-SHA256, under the secret shared by network and store, over
//! `provernet-artifacts/v1 ‖ method ‖ id ‖ kind ‖ visibility ‖ expires ‖ retain_until`
//! [`‖ max_bytes=N`] (newline-separated). A GET signature also authorises HEAD. An upload URL with
//! `max_bytes` refuses a body above it with 413, as above the store's own limit.

use std::{fmt, str::FromStr, time::Duration};

use hmac::{Hmac, Mac};
use provernet_types::ArtifactId;
use serde::Deserialize;
use sha2::Sha256;

use crate::{
    error::SignError,
    kind::{ArtifactKind, Visibility, unix_now},
};

type HmacSha256 = Hmac<Sha256>;

/// Domain separator of the signed message, versioned so the format can change.
const SIGNING_DOMAIN: &str = "provernet-artifacts/v1";

/// Shortest secret accepted, in bytes: anything shorter is guessable.
pub const MIN_SECRET_LEN: usize = 16;

/// The HTTP method a presigned URL is good for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// Read the artifact (GET, and HEAD).
    Get,
    /// Upload the artifact.
    Put,
}

impl Method {
    /// The wire name: `GET` or `PUT`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Put => "PUT",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Method {
    type Err = SignError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "GET" | "get" => Ok(Self::Get),
            "PUT" | "put" => Ok(Self::Put),
            _ => Err(SignError::Malformed { field: "method" }),
        }
    }
}

/// What a presigned URL grants: the fields covered by its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The method it is good for.
    pub method: Method,
    /// The artifact it names.
    pub id: ArtifactId,
    /// The artifact's kind.
    pub kind: ArtifactKind,
    /// Who may read the artifact once stored.
    pub visibility: Visibility,
    /// When the URL stops working, unix seconds.
    pub expires: u64,
    /// For uploads: when retention may delete the artifact (unix seconds); `None` keeps it.
    pub retain_until: Option<u64>,
    /// For uploads: the most bytes the upload may carry, below the store's own limit (the
    /// network grants exactly the size an account declared, so nobody uploads more than asked).
    pub max_bytes: Option<u64>,
}

/// A signed [`Grant`]: render it with [`PresignedUrl::url`] and hand it to an account.
#[derive(Clone, PartialEq, Eq)]
pub struct PresignedUrl {
    /// What the URL grants.
    pub grant: Grant,
    /// HMAC-SHA256 over the grant.
    pub signature: [u8; 32],
}

impl fmt::Debug for PresignedUrl {
    // The signature is a bearer credential: keep it out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresignedUrl").field("grant", &self.grant).finish_non_exhaustive()
    }
}

impl PresignedUrl {
    /// The path part: `/v1/artifacts/{id}`.
    pub fn path(&self) -> String {
        artifact_path(&self.grant.id)
    }

    /// The query string, without the leading `?`.
    pub fn query(&self) -> String {
        let g = &self.grant;
        let mut q = format!(
            "method={}&kind={}&visibility={}&expires={}",
            g.method, g.kind, g.visibility, g.expires
        );
        if let Some(retain) = g.retain_until {
            q.push_str(&format!("&retain_until={retain}"));
        }
        if let Some(max) = g.max_bytes {
            q.push_str(&format!("&max_bytes={max}"));
        }
        q.push_str("&sig=");
        q.push_str(&hex::encode(self.signature));
        q
    }

    /// The full URL on a store reachable at `base` (e.g. `http://127.0.0.1:7070`).
    pub fn url(&self, base: &str) -> String {
        format!("{}{}?{}", base.trim_end_matches('/'), self.path(), self.query())
    }
}

/// The path of an artifact on the store: `/v1/artifacts/{id}`.
pub fn artifact_path(id: &ArtifactId) -> String {
    format!("/v1/artifacts/{id}")
}

/// The unsigned URL of a public artifact on a store reachable at `base`.
pub fn public_url(base: &str, id: &ArtifactId) -> String {
    format!("{}{}", base.trim_end_matches('/'), artifact_path(id))
}

/// The presign fields of a request's query string, as the server receives them.
#[derive(Clone, Default, Deserialize)]
pub struct PresignQuery {
    /// `GET` or `PUT`.
    pub method: Option<String>,
    /// Artifact kind.
    pub kind: Option<String>,
    /// `public` or `private`.
    pub visibility: Option<String>,
    /// Expiry of the URL, unix seconds.
    pub expires: Option<u64>,
    /// Retention expiry of an uploaded artifact, unix seconds.
    pub retain_until: Option<u64>,
    /// Most bytes an upload may carry.
    pub max_bytes: Option<u64>,
    /// Hex HMAC-SHA256.
    pub sig: Option<String>,
}

impl fmt::Debug for PresignQuery {
    // The signature is a bearer credential: keep it out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresignQuery")
            .field("method", &self.method)
            .field("kind", &self.kind)
            .field("visibility", &self.visibility)
            .field("expires", &self.expires)
            .field("retain_until", &self.retain_until)
            .field("max_bytes", &self.max_bytes)
            .field("signed", &self.sig.is_some())
            .finish()
    }
}

impl PresignQuery {
    /// Whether the query carries a signature at all.
    pub fn is_signed(&self) -> bool {
        self.sig.is_some()
    }
}

/// Makes and checks presigned URLs with the HMAC secret shared by network and store.
#[derive(Clone)]
pub struct UrlSigner {
    /// Keyed once; cloned per signature so the key schedule isn't recomputed.
    mac: HmacSha256,
}

impl fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UrlSigner(<secret>)")
    }
}

impl UrlSigner {
    /// A signer for `secret`.
    ///
    /// # Errors
    /// [`SignError::WeakSecret`] if the secret is shorter than [`MIN_SECRET_LEN`] bytes.
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, SignError> {
        let secret = secret.as_ref();
        if secret.len() < MIN_SECRET_LEN {
            return Err(SignError::WeakSecret { min: MIN_SECRET_LEN });
        }
        let mac =
            HmacSha256::new_from_slice(secret).map_err(|_| SignError::WeakSecret { min: 1 })?;
        Ok(Self { mac })
    }

    /// Signs an arbitrary grant.
    pub fn sign(&self, grant: Grant) -> PresignedUrl {
        let mut mac = self.mac.clone();
        mac.update(signing_message(&grant).as_bytes());
        PresignedUrl { grant, signature: mac.finalize().into_bytes().into() }
    }

    /// An upload URL for `id`, valid for `ttl`, storing the artifact with this kind, visibility and
    /// retention expiry.
    pub fn presign_put(
        &self,
        id: ArtifactId,
        kind: ArtifactKind,
        visibility: Visibility,
        ttl: Duration,
        retain_until: Option<u64>,
    ) -> PresignedUrl {
        let expires = unix_now().saturating_add(ttl.as_secs());
        self.sign(Grant {
            method: Method::Put,
            id,
            kind,
            visibility,
            expires,
            retain_until,
            max_bytes: None,
        })
    }

    /// A download URL for `id`, valid for `ttl` (needed for private artifacts).
    pub fn presign_get(
        &self,
        id: ArtifactId,
        kind: ArtifactKind,
        visibility: Visibility,
        ttl: Duration,
    ) -> PresignedUrl {
        let expires = unix_now().saturating_add(ttl.as_secs());
        self.sign(Grant {
            method: Method::Get,
            id,
            kind,
            visibility,
            expires,
            retain_until: None,
            max_bytes: None,
        })
    }

    /// Checks a request's presign query for `method` on `id` at time `now` (unix seconds).
    ///
    /// # Errors
    /// [`SignError::Missing`] without a signature, [`SignError::Malformed`] for unparsable fields,
    /// [`SignError::WrongMethod`] if the URL was issued for another method,
    /// [`SignError::Forged`] if the signature does not match (compared in constant time), and
    /// [`SignError::Expired`] past its expiry.
    pub fn verify(
        &self,
        method: Method,
        id: &ArtifactId,
        query: &PresignQuery,
        now: u64,
    ) -> Result<Grant, SignError> {
        let sig_hex = query.sig.as_deref().ok_or(SignError::Missing)?;
        let signed_method: Method =
            query.method.as_deref().ok_or(SignError::Malformed { field: "method" })?.parse()?;
        let kind = query
            .kind
            .as_deref()
            .ok_or(SignError::Malformed { field: "kind" })?
            .parse()
            .map_err(|_| SignError::Malformed { field: "kind" })?;
        let visibility = match query.visibility.as_deref() {
            Some(v) => v.parse().map_err(|_| SignError::Malformed { field: "visibility" })?,
            None => Visibility::Public,
        };
        let expires = query.expires.ok_or(SignError::Malformed { field: "expires" })?;
        let signature = hex::decode(sig_hex).map_err(|_| SignError::Malformed { field: "sig" })?;
        let grant = Grant {
            method: signed_method,
            id: *id,
            kind,
            visibility,
            expires,
            retain_until: query.retain_until,
            max_bytes: query.max_bytes,
        };

        let mut mac = self.mac.clone();
        mac.update(signing_message(&grant).as_bytes());
        mac.verify_slice(&signature).map_err(|_| SignError::Forged)?;
        // Only after the MAC holds: the method and expiry are then the issuer's, not a forger's.
        if signed_method != method {
            return Err(SignError::WrongMethod { signed: signed_method, used: method });
        }
        if expires < now {
            return Err(SignError::Expired { expires, now });
        }
        Ok(grant)
    }
}

/// The exact bytes that are MACed for a grant.
fn signing_message(g: &Grant) -> String {
    let retain = g.retain_until.map_or_else(|| "-".to_owned(), |r| r.to_string());
    let mut message = format!(
        "{SIGNING_DOMAIN}\n{}\n{}\n{}\n{}\n{}\n{retain}",
        g.method, g.id, g.kind, g.visibility, g.expires
    );
    // Appended only when set, so that URLs without a bound sign as before.
    if let Some(max) = g.max_bytes {
        message.push_str(&format!("\nmax_bytes={max}"));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query_of(url: &PresignedUrl) -> PresignQuery {
        let mut q = PresignQuery::default();
        for pair in url.query().split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "method" => q.method = Some(v.to_owned()),
                "kind" => q.kind = Some(v.to_owned()),
                "visibility" => q.visibility = Some(v.to_owned()),
                "expires" => q.expires = v.parse().ok(),
                "retain_until" => q.retain_until = v.parse().ok(),
                "max_bytes" => q.max_bytes = v.parse().ok(),
                "sig" => q.sig = Some(v.to_owned()),
                _ => {}
            }
        }
        q
    }

    fn signer() -> UrlSigner {
        UrlSigner::new("0123456789abcdef-test").expect("secret")
    }

    #[test]
    fn valid_url_verifies() {
        let id = ArtifactId::of(b"x");
        let url = signer().presign_put(
            id,
            ArtifactKind::Inputs,
            Visibility::Private,
            Duration::from_secs(60),
            Some(99),
        );
        let grant = signer().verify(Method::Put, &id, &query_of(&url), unix_now()).expect("valid");
        assert_eq!(grant.visibility, Visibility::Private);
        assert_eq!(grant.retain_until, Some(99));
    }

    #[test]
    fn an_upload_bound_is_signed() {
        let id = ArtifactId::of(b"x");
        let grant = Grant {
            method: Method::Put,
            id,
            kind: ArtifactKind::Program,
            visibility: Visibility::Public,
            expires: unix_now() + 60,
            retain_until: None,
            max_bytes: Some(1000),
        };
        let url = signer().sign(grant);
        assert!(url.query().contains("max_bytes=1000"));
        let now = unix_now();
        let verified = signer().verify(Method::Put, &id, &query_of(&url), now).expect("valid");
        assert_eq!(verified.max_bytes, Some(1000));
        // Raised or dropped, the bound no longer matches the signature.
        for max_bytes in [Some(1 << 30), None] {
            let q = PresignQuery { max_bytes, ..query_of(&url) };
            assert_eq!(signer().verify(Method::Put, &id, &q, now), Err(SignError::Forged));
        }
    }

    #[test]
    fn tampering_is_caught() {
        let id = ArtifactId::of(b"x");
        let url = signer().presign_get(
            id,
            ArtifactKind::Inputs,
            Visibility::Private,
            Duration::from_secs(60),
        );
        let now = unix_now();

        let mut q = query_of(&url);
        q.expires = q.expires.map(|e| e + 1000);
        assert_eq!(signer().verify(Method::Get, &id, &q, now), Err(SignError::Forged));

        let q = query_of(&url);
        let other = ArtifactId::of(b"y");
        assert_eq!(signer().verify(Method::Get, &other, &q, now), Err(SignError::Forged));

        let wrong_key = UrlSigner::new("another-secret-of-16").expect("secret");
        assert_eq!(wrong_key.verify(Method::Get, &id, &q, now), Err(SignError::Forged));

        assert!(matches!(
            signer().verify(Method::Put, &id, &q, now),
            Err(SignError::WrongMethod { .. })
        ));
        assert!(matches!(
            signer().verify(Method::Get, &id, &q, now + 3600),
            Err(SignError::Expired { .. })
        ));
        assert_eq!(
            signer().verify(Method::Get, &id, &PresignQuery::default(), now),
            Err(SignError::Missing)
        );
    }

    #[test]
    fn short_secret_is_refused() {
        assert!(UrlSigner::new("short").is_err());
    }

    #[test]
    fn url_shape() {
        let id = ArtifactId::from_bytes([7; 32]);
        let url = signer().presign_get(id, ArtifactKind::Proof, Visibility::Public, Duration::ZERO);
        let s = url.url("http://h:1/");
        assert!(s.starts_with(&format!("http://h:1/v1/artifacts/{id}?method=GET&kind=proof")));
        assert!(!format!("{url:?}").contains(&hex::encode(url.signature)));
    }
}
