//! S3's errors: a status, a code from S3's list, and a message, sent as
//! `<Error><Code>…</Code><Message>…</Message>…</Error>`.

use hearth_r2::R2Error;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct S3Error {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

macro_rules! errors {
    ($($fn:ident => $status:literal $code:literal;)*) => {
        impl S3Error {
            $(
                pub fn $fn(message: impl Into<String>) -> Self {
                    Self { status: $status, code: $code, message: message.into() }
                }
            )*
        }
    };
}

errors! {
    access_denied => 403 "AccessDenied";
    authorization_header_malformed => 400 "AuthorizationHeaderMalformed";
    authorization_query_malformed => 400 "AuthorizationQueryParametersError";
    bad_digest => 400 "BadDigest";
    bucket_already_owned => 409 "BucketAlreadyOwnedByYou";
    bucket_not_empty => 409 "BucketNotEmpty";
    entity_too_large => 400 "EntityTooLarge";
    entity_too_small => 400 "EntityTooSmall";
    incomplete_body => 400 "IncompleteBody";
    internal => 500 "InternalError";
    invalid_access_key_id => 403 "InvalidAccessKeyId";
    invalid_argument => 400 "InvalidArgument";
    invalid_bucket_name => 400 "InvalidBucketName";
    invalid_bucket_state => 409 "InvalidBucketState";
    invalid_digest => 400 "InvalidDigest";
    invalid_part => 400 "InvalidPart";
    invalid_part_order => 400 "InvalidPartOrder";
    invalid_range => 416 "InvalidRange";
    invalid_request => 400 "InvalidRequest";
    key_too_long => 400 "KeyTooLongError";
    malformed_xml => 400 "MalformedXML";
    metadata_too_large => 400 "MetadataTooLarge";
    method_not_allowed => 405 "MethodNotAllowed";
    missing_content_length => 411 "MissingContentLength";
    no_such_bucket => 404 "NoSuchBucket";
    no_such_cors => 404 "NoSuchCORSConfiguration";
    no_such_key => 404 "NoSuchKey";
    no_such_upload => 404 "NoSuchUpload";
    not_implemented => 501 "NotImplemented";
    precondition_failed => 412 "PreconditionFailed";
    request_time_too_skewed => 403 "RequestTimeTooSkewed";
    signature_does_not_match => 403 "SignatureDoesNotMatch";
    content_sha256_mismatch => 400 "XAmzContentSHA256Mismatch";
}

impl S3Error {
    /// The XML body; HEAD responses send none.
    pub fn to_xml(&self, resource: &str, request_id: &str) -> String {
        let mut w = crate::xml::Writer::new();
        w.open("Error");
        w.leaf("Code", self.code);
        w.leaf("Message", &self.message);
        w.leaf("Resource", resource);
        w.leaf("RequestId", request_id);
        w.close("Error");
        w.finish()
    }
}

impl From<R2Error> for S3Error {
    fn from(e: R2Error) -> Self {
        let msg = e.to_string();
        match e {
            R2Error::InvalidObjectName { .. } => S3Error::key_too_long(msg),
            R2Error::MetadataTooLarge { .. } => S3Error::metadata_too_large(msg),
            R2Error::EntityTooLarge { .. } => S3Error::entity_too_large(msg),
            R2Error::EntityTooSmall { .. } => S3Error::entity_too_small(msg),
            R2Error::InvalidMaxKeys { .. } | R2Error::InvalidDeleteKeyCount { .. } => {
                S3Error::invalid_argument(msg)
            }
            R2Error::NoSuchUpload { .. } => S3Error::no_such_upload(msg),
            R2Error::InvalidPart { .. } => S3Error::invalid_part(msg),
            R2Error::BadUpload { .. } => S3Error::invalid_part(msg),
            R2Error::InvalidRange { .. } => S3Error::invalid_range(msg),
            R2Error::BadDigest { .. } => S3Error::bad_digest(msg),
            R2Error::InvalidArgument { .. } => S3Error::invalid_argument(msg),
            R2Error::Io { ref source, .. } => {
                if let Some(body) = source
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<crate::body::BodyError>())
                {
                    return body.0.clone();
                }
                tracing::error!("R2 storage: {msg}");
                S3Error::internal("We encountered an internal error. Please try again.")
            }
            R2Error::InternalError { .. }
            | R2Error::Sqlite { .. }
            | R2Error::Store { .. }
            | R2Error::Open { .. } => {
                tracing::error!("R2 storage: {msg}");
                S3Error::internal("We encountered an internal error. Please try again.")
            }
        }
    }
}
