//! [`Access`]: who may do what on the embedded server, checked by s3s
//! before a request's input is read.
//!
//! - Anonymous requests are refused (s3s's default).
//! - A presigned request (SigV4 or SigV2 query-string authentication) may
//!   only `PutObject` into the upload bucket (the masters bucket). SigV4
//!   signs the method and the path, so such a URL writes the one key it was
//!   minted for and nothing else: not the CDN bucket, not another master, no
//!   reads, no deletes. Browser POST policies are refused: reelay mints none.
//! - None of reelay's own buckets can be deleted.
//!
//! Everything else needs the install's own credentials (header-signed
//! requests), which only reelay holds.

use s3s::access::{S3Access, S3AccessContext};
use s3s::path::S3Path;
use s3s::{s3_error, S3Result};

/// The embedded server's access rules.
#[derive(Debug, Clone)]
pub(super) struct Access {
    /// The one bucket presigned PUTs may write (the masters bucket).
    pub(super) upload_bucket: Option<String>,
    /// reelay's buckets: never deleted through S3.
    pub(super) protected: Vec<String>,
}

/// Whether a request authenticates through its query string (a presigned
/// URL) rather than its `Authorization` header.
pub(super) fn is_presigned(query: Option<&str>) -> bool {
    let Some(q) = query else { return false };
    q.split('&').any(|pair| {
        let name = pair.split('=').next().unwrap_or_default();
        [
            "X-Amz-Signature",
            "X-Amz-Credential",
            "Signature",
            "AWSAccessKeyId",
        ]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n))
    })
}

impl Access {
    /// The decision, on the operation's name, its path and how it was signed.
    pub(super) fn decide(&self, op: &str, path: &S3Path, presigned: bool) -> S3Result<()> {
        if op == "PostObject" {
            return Err(s3_error!(
                AccessDenied,
                "browser POST uploads are not accepted by this server"
            ));
        }
        if presigned {
            let allowed = match (op, path) {
                ("PutObject", S3Path::Object { bucket, .. }) => {
                    self.upload_bucket.as_deref() == Some(&**bucket)
                }
                _ => false,
            };
            if !allowed {
                return Err(s3_error!(
                    AccessDenied,
                    "a presigned URL may only PUT the master it was minted for"
                ));
            }
        }
        if op == "DeleteBucket" {
            if let S3Path::Bucket { bucket } = path {
                if self.protected.iter().any(|b| **b == **bucket) {
                    return Err(s3_error!(
                        AccessDenied,
                        "bucket {bucket} belongs to reelay and cannot be deleted"
                    ));
                }
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl S3Access for Access {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        if cx.credentials().is_none() {
            return Err(s3_error!(AccessDenied, "signed requests only"));
        }
        let presigned = is_presigned(cx.uri().query());
        self.decide(cx.s3_op().name(), cx.s3_path(), presigned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> Access {
        Access {
            upload_bucket: Some("masters".into()),
            protected: vec!["masters".into(), "cdn".into()],
        }
    }

    fn object(bucket: &str, key: &str) -> S3Path {
        S3Path::Object {
            bucket: bucket.into(),
            key: key.into(),
        }
    }

    #[test]
    fn presigned_requests_only_put_into_the_upload_bucket() {
        let a = access();
        a.decide(
            "PutObject",
            &object("masters", "masters/c/a/v0/t/master.mp4"),
            true,
        )
        .unwrap();
        for (op, path) in [
            ("PutObject", object("cdn", "v1/c/a/v0/manifest.json")),
            ("GetObject", object("masters", "masters/x.mp4")),
            ("DeleteObject", object("masters", "masters/x.mp4")),
            ("CreateMultipartUpload", object("masters", "masters/x.mp4")),
            ("CopyObject", object("masters", "masters/x.mp4")),
            (
                "ListObjectsV2",
                S3Path::Bucket {
                    bucket: "masters".into(),
                },
            ),
        ] {
            let e = a.decide(op, &path, true).unwrap_err();
            assert_eq!(e.code(), &s3s::S3ErrorCode::AccessDenied, "{op}");
        }
        // The install's own (header-signed) requests are not limited this way.
        a.decide("PutObject", &object("cdn", "v1/x"), false)
            .unwrap();
        a.decide("GetObject", &object("masters", "masters/x.mp4"), false)
            .unwrap();
    }

    #[test]
    fn reelays_buckets_cannot_be_deleted_and_post_policies_are_refused() {
        let a = access();
        for b in ["masters", "cdn"] {
            let path = S3Path::Bucket { bucket: b.into() };
            assert!(a.decide("DeleteBucket", &path, false).is_err(), "{b}");
        }
        let other = S3Path::Bucket {
            bucket: "scratch".into(),
        };
        a.decide("DeleteBucket", &other, false).unwrap();
        assert!(a.decide("PostObject", &other, false).is_err());
    }

    #[test]
    fn query_string_authentication_is_recognised_in_both_versions() {
        assert!(is_presigned(Some(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a&X-Amz-Signature=b"
        )));
        assert!(is_presigned(Some("AWSAccessKeyId=a&Expires=1&Signature=b")));
        assert!(is_presigned(Some("x-amz-signature=b")));
        assert!(!is_presigned(Some("list-type=2&prefix=masters/")));
        assert!(!is_presigned(Some("uploads")));
        assert!(!is_presigned(None));
    }
}
