//! Amazon SNS message signatures, checked as AWS documents in "Verifying the
//! signatures of Amazon SNS messages": the string to sign is `Key\nValue\n`
//! for a fixed list of keys in byte order (`Message`, `MessageId`,
//! `Subject` if present, `Timestamp`, `TopicArn`, `Type` for a
//! `Notification`; `Message`, `MessageId`, `SubscribeURL`, `Timestamp`,
//! `Token`, `TopicArn`, `Type` for a `SubscriptionConfirmation` or
//! `UnsubscribeConfirmation`), signed with RSA PKCS #1 v1.5 over SHA-1
//! (`SignatureVersion` 1) or SHA-256 (2) by the key of the X.509
//! certificate at `SigningCertURL`.
//!
//! The certificate URL must be on one of `events.sns_hosts` (by default
//! `https://sns.<region>.amazonaws.com`), is fetched through the outbound
//! guard, and the certificate is kept in memory per URL.

use crate::outbound::{Guard, HostPatterns};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{
    alg_id, AlgorithmIdentifier, CertificateDer, InvalidSignature, SignatureVerificationAlgorithm,
};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

/// Why an SNS message was not believed. The text is what the sender sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnsError {
    #[error("the SNS message is not signed (Signature, SignatureVersion and SigningCertURL are required)")]
    Unsigned,
    #[error("SignatureVersion {0:?} is not supported (1 or 2)")]
    Version(String),
    #[error("the SNS message lacks {0}, which its signature covers")]
    Missing(&'static str),
    #[error("SigningCertURL is not on an SNS endpoint reelay trusts (events.sns_hosts)")]
    CertUrl,
    #[error("the signing certificate could not be fetched")]
    CertFetch,
    #[error("the signing certificate is not a PEM X.509 certificate with an RSA key")]
    CertInvalid,
    #[error("Signature is not base64")]
    SignatureEncoding,
    #[error("the signature does not match the message")]
    BadSignature,
}

/// RSA PKCS #1 v1.5 with SHA-1 or SHA-256, 2048..8192-bit keys.
#[derive(Debug)]
struct RsaPkcs1 {
    sha256: bool,
}

impl SignatureVerificationAlgorithm for RsaPkcs1 {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        use aws_lc_rs::signature;
        let alg: &'static dyn signature::VerificationAlgorithm = if self.sha256 {
            &signature::RSA_PKCS1_2048_8192_SHA256
        } else {
            &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY
        };
        signature::UnparsedPublicKey::new(alg, public_key)
            .verify(message, signature)
            .map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::RSA_ENCRYPTION
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::RSA_PKCS1_SHA256
    }
}

fn field<'a>(msg: &'a Value, key: &'static str) -> Result<&'a str, SnsError> {
    msg.get(key)
        .and_then(Value::as_str)
        .ok_or(SnsError::Missing(key))
}

/// The canonical string AWS signs for this message.
pub fn string_to_sign(msg: &Value) -> Result<String, SnsError> {
    let kind = field(msg, "Type")?;
    let keys: &[&'static str] = match kind {
        "Notification" => &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ],
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ],
        _ => return Err(SnsError::Missing("a known Type")),
    };
    let mut out = String::new();
    for &k in keys {
        match msg.get(k).and_then(Value::as_str) {
            Some(v) => {
                out.push_str(k);
                out.push('\n');
                out.push_str(v);
                out.push('\n');
            }
            // Only a Notification's Subject is optional.
            None if k == "Subject" => {}
            None => return Err(SnsError::Missing(k)),
        }
    }
    Ok(out)
}

/// Checks `msg` against the certificate (DER) its SigningCertURL named.
pub fn verify_with_cert(msg: &Value, cert_der: &[u8]) -> Result<(), SnsError> {
    use base64::Engine;
    let (Some(sig), Some(version)) = (
        msg.get("Signature").and_then(Value::as_str),
        msg.get("SignatureVersion").and_then(Value::as_str),
    ) else {
        return Err(SnsError::Unsigned);
    };
    let alg = match version {
        "1" => RsaPkcs1 { sha256: false },
        "2" => RsaPkcs1 { sha256: true },
        other => return Err(SnsError::Version(other.chars().take(16).collect())),
    };
    let signature = base64::engine::general_purpose::STANDARD
        .decode(sig.trim())
        .map_err(|_| SnsError::SignatureEncoding)?;
    let text = string_to_sign(msg)?;
    let der = CertificateDer::from(cert_der);
    let cert = webpki::EndEntityCert::try_from(&der).map_err(|_| SnsError::CertInvalid)?;
    cert.verify_signature(&alg, text.as_bytes(), &signature)
        .map_err(|e| match e {
            webpki::Error::InvalidSignatureForPublicKey => SnsError::BadSignature,
            _ => SnsError::CertInvalid,
        })
}

/// The DER of the first certificate in a PEM text.
pub fn cert_from_pem(pem: &[u8]) -> Result<Vec<u8>, SnsError> {
    CertificateDer::from_pem_slice(pem)
        .map(|c| c.as_ref().to_vec())
        .map_err(|_| SnsError::CertInvalid)
}

/// Certificates by URL. Only URLs on a trusted host get here.
static CERTS: LazyLock<Mutex<HashMap<String, Arc<Vec<u8>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));
const CERT_CACHE_MAX: usize = 64;

/// Verifies SNS messages: certificate URL rule, cached fetch, signature.
pub struct Verifier {
    pub hosts: HostPatterns,
    pub guard: Guard,
}

impl Verifier {
    pub async fn verify(&self, msg: &Value) -> Result<(), SnsError> {
        let url = msg
            .get("SigningCertURL")
            .or_else(|| msg.get("SigningCertUrl"))
            .and_then(Value::as_str)
            .ok_or(SnsError::Unsigned)?;
        if msg.get("Signature").is_none() || msg.get("SignatureVersion").is_none() {
            return Err(SnsError::Unsigned);
        }
        let parsed = self.guard.check_url(url).map_err(|_| SnsError::CertUrl)?;
        if !self.hosts.matches(&parsed) || !parsed.path().ends_with(".pem") {
            return Err(SnsError::CertUrl);
        }
        let cert = self.cert(parsed.as_str()).await?;
        verify_with_cert(msg, &cert)
    }

    async fn cert(&self, url: &str) -> Result<Arc<Vec<u8>>, SnsError> {
        if let Some(c) = CERTS.lock().expect("cert cache").get(url) {
            return Ok(c.clone());
        }
        let fetch = async {
            let client = self.guard.client(Duration::from_secs(10))?;
            let res = client.get(url).send().await?.error_for_status()?;
            let body = res.bytes().await?;
            anyhow::ensure!(body.len() <= 64 * 1024, "certificate over 64 KiB");
            anyhow::Ok(body)
        };
        let pem = fetch.await.map_err(|e| {
            tracing::warn!(error = %format!("{e:#}"), "fetching the SNS signing certificate failed");
            SnsError::CertFetch
        })?;
        let der = Arc::new(cert_from_pem(&pem)?);
        let mut cache = CERTS.lock().expect("cert cache");
        if cache.len() >= CERT_CACHE_MAX {
            cache.clear();
        }
        cache.insert(url.to_string(), der.clone());
        Ok(der)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;
    use std::process::Command;

    /// A self-signed RSA certificate and its key, made by the openssl CLI.
    fn make_cert(dir: &Path) -> (Vec<u8>, std::path::PathBuf) {
        let key = dir.join("key.pem");
        let cert = dir.join("cert.pem");
        let ok = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=sns.test"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl runs");
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        (std::fs::read(&cert).unwrap(), key)
    }

    fn sign(key: &Path, digest: &str, text: &str) -> String {
        use base64::Engine;
        let dir = key.parent().unwrap();
        let input = dir.join("input.txt");
        std::fs::write(&input, text).unwrap();
        let out = Command::new("openssl")
            .args(["dgst", digest, "-sign"])
            .arg(key)
            .arg(&input)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        base64::engine::general_purpose::STANDARD.encode(out.stdout)
    }

    fn notification() -> Value {
        json!({
            "Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
            "Subject": "My First Message", "Message": "Hello world!",
            "Timestamp": "2012-05-02T00:54:06.655Z",
            "SigningCertURL": "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
        })
    }

    #[test]
    fn the_string_to_sign_is_the_documented_keys_in_order() {
        assert_eq!(
            string_to_sign(&notification()).unwrap(),
            "Message\nHello world!\nMessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\nSubject\nMy First Message\nTimestamp\n2012-05-02T00:54:06.655Z\nTopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\nType\nNotification\n"
        );
        let mut no_subject = notification();
        no_subject.as_object_mut().unwrap().remove("Subject");
        assert!(!string_to_sign(&no_subject).unwrap().contains("Subject"));
        let confirm = json!({"Type": "SubscriptionConfirmation", "MessageId": "m", "Token": "t",
            "TopicArn": "arn", "Message": "msg", "SubscribeURL": "https://s/", "Timestamp": "ts"});
        assert_eq!(
            string_to_sign(&confirm).unwrap(),
            "Message\nmsg\nMessageId\nm\nSubscribeURL\nhttps://s/\nTimestamp\nts\nToken\nt\nTopicArn\narn\nType\nSubscriptionConfirmation\n"
        );
        let mut no_token = confirm.clone();
        no_token.as_object_mut().unwrap().remove("Token");
        assert_eq!(string_to_sign(&no_token), Err(SnsError::Missing("Token")));
    }

    #[test]
    fn good_signatures_of_both_versions_verify_and_any_change_breaks_them() {
        let dir = tempfile::tempdir().unwrap();
        let (pem, key) = make_cert(dir.path());
        let der = cert_from_pem(&pem).unwrap();
        for (version, digest) in [("1", "-sha1"), ("2", "-sha256")] {
            let mut msg = notification();
            msg["SignatureVersion"] = version.into();
            msg["Signature"] = sign(&key, digest, &string_to_sign(&msg).unwrap()).into();
            assert_eq!(verify_with_cert(&msg, &der), Ok(()), "version {version}");

            let mut changed = msg.clone();
            changed["Message"] = "Hello world?".into();
            assert_eq!(
                verify_with_cert(&changed, &der),
                Err(SnsError::BadSignature)
            );
            let mut other_version = msg.clone();
            other_version["SignatureVersion"] = if version == "1" { "2" } else { "1" }.into();
            assert_eq!(
                verify_with_cert(&other_version, &der),
                Err(SnsError::BadSignature)
            );
            let mut unsigned = msg.clone();
            unsigned.as_object_mut().unwrap().remove("Signature");
            assert_eq!(verify_with_cert(&unsigned, &der), Err(SnsError::Unsigned));
            let mut v3 = msg.clone();
            v3["SignatureVersion"] = "3".into();
            assert_eq!(
                verify_with_cert(&v3, &der),
                Err(SnsError::Version("3".into()))
            );
            let mut garbage = msg.clone();
            garbage["Signature"] = "not base64!".into();
            assert_eq!(
                verify_with_cert(&garbage, &der),
                Err(SnsError::SignatureEncoding)
            );
        }
        // A certificate of another key refuses the same signature.
        let other = tempfile::tempdir().unwrap();
        let (other_pem, _) = make_cert(other.path());
        let mut msg = notification();
        msg["SignatureVersion"] = "2".into();
        msg["Signature"] = sign(&key, "-sha256", &string_to_sign(&msg).unwrap()).into();
        assert_eq!(
            verify_with_cert(&msg, &cert_from_pem(&other_pem).unwrap()),
            Err(SnsError::BadSignature)
        );
        assert_eq!(cert_from_pem(b"nope"), Err(SnsError::CertInvalid));
        assert_eq!(
            verify_with_cert(&msg, b"\x30\x00"),
            Err(SnsError::CertInvalid)
        );
    }

    #[tokio::test]
    async fn a_cert_url_off_the_trusted_hosts_is_refused_before_any_fetch() {
        let v = Verifier {
            hosts: HostPatterns::new(&["https://sns.*.amazonaws.com".into()]).unwrap(),
            guard: Guard::default(),
        };
        for url in [
            "https://sns.us-east-1.amazonaws.com.evil.example/x.pem",
            "http://sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com/x.txt",
            "https://127.0.0.1/x.pem",
            "https://user:pw@sns.us-east-1.amazonaws.com/x.pem",
        ] {
            let mut msg = notification();
            msg["SigningCertURL"] = url.into();
            msg["SignatureVersion"] = "1".into();
            msg["Signature"] = "AAAA".into();
            assert_eq!(v.verify(&msg).await, Err(SnsError::CertUrl), "{url}");
        }
        let mut unsigned = notification();
        unsigned.as_object_mut().unwrap().remove("SigningCertURL");
        assert_eq!(v.verify(&unsigned).await, Err(SnsError::Unsigned));
    }
}
