//! Request handlers for `/v1/artifacts/{id}`.

use std::{pin::Pin, str::FromStr, time::Duration};

use axum::{
    Json,
    body::Body,
    extract::{
        Path, Query, State,
        rejection::{PathRejection, QueryRejection},
    },
    http::{HeaderMap, HeaderValue, Method as HttpMethod, StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use provernet_types::ArtifactId;

use super::{
    ArtifactServer,
    range::{RangeRequest, parse_range},
};
use crate::{
    error::{ApiError, BoxError, StorageError},
    kind::{ArtifactMeta, unix_now},
    metrics::ArtifactsHttpMetrics,
    presign::{Method, PresignQuery},
    storage::{NewArtifact, PutOutcome},
};

/// Header naming the artifact's kind.
pub const KIND_HEADER: &str = "x-artifact-kind";
/// Header naming the artifact's visibility.
pub const VISIBILITY_HEADER: &str = "x-artifact-visibility";

type UploadStream = Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send>>;

/// `GET /health`.
pub async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// How long, and how much, a refused upload's body is still read after the answer.
const LINGER: Duration = Duration::from_secs(5);
/// See [`LINGER`].
const LINGER_BYTES: usize = 64 << 20;

/// Reads and drops what a refused client is already sending, for a bounded while (a lingering
/// close, as nginx does): closing a connection with unread data resets it, and the client would
/// see a broken connection instead of the answer.
async fn linger(body: Body) {
    let mut stream = body.into_data_stream();
    let _ = tokio::time::timeout(LINGER, async {
        let mut read = 0;
        while let Some(Ok(chunk)) = stream.next().await {
            read += chunk.len();
            if read > LINGER_BYTES {
                break;
            }
        }
    })
    .await;
}

/// `PUT /v1/artifacts/{id}?<presigned PUT>`: stores the body if it hashes to `id`.
pub async fn put_artifact(
    State(server): State<ArtifactServer>,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<PresignQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Path(id) = id.map_err(|e| ApiError::BadId(e.body_text()))?;
    let id = parse_id(&id)?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let grant = server.signer().verify(Method::Put, &id, &query, unix_now())?;
    let limit = server.max_artifact_bytes().min(grant.max_bytes.unwrap_or(u64::MAX));
    if content_length(&headers).is_some_and(|len| len > limit) {
        tokio::spawn(linger(body));
        return Err(ApiError::TooLarge { limit });
    }
    let body = upload_stream(body, server.inner.idle_timeout);
    let storage = server.storage();
    let new = NewArtifact {
        kind: grant.kind,
        visibility: grant.visibility,
        retain_until: grant.retain_until,
    };

    // Already stored: read and check the body (the client is sending it anyway) but write nothing.
    if let Some(meta) = storage.meta(&id).await?.filter(|m| !m.is_expired(unix_now())) {
        let size = drain_verified(id, body, limit).await?;
        storage.extend_retention(&id, new.retain_until).await?;
        tracing::debug!(target: "provernet::artifacts", %id, size, "upload of a stored artifact");
        return Ok(stored_response(StatusCode::OK, id, meta.size, false));
    }
    let outcome = storage.put_stream(id, new, body, limit).await?;
    Ok(match outcome {
        PutOutcome::Created { size } => {
            tracing::info!(target: "provernet::artifacts", %id, size, kind = %new.kind, "artifact stored");
            stored_response(StatusCode::CREATED, id, size, true)
        }
        PutOutcome::AlreadyStored { size } => stored_response(StatusCode::OK, id, size, false),
    })
}

/// `GET`/`HEAD /v1/artifacts/{id}[?<presigned GET>]`, honouring a single `Range`.
pub async fn get_artifact(
    State(server): State<ArtifactServer>,
    id: Result<Path<String>, PathRejection>,
    method: HttpMethod,
    query: Result<Query<PresignQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path(id) = id.map_err(|e| ApiError::BadId(e.body_text()))?;
    let id = parse_id(&id)?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let now = unix_now();
    // A signature that is present is always checked, before anything about the id is revealed.
    if query.is_signed() {
        server.signer().verify(Method::Get, &id, &query, now)?;
    }
    let meta = server
        .storage()
        .meta(&id)
        .await?
        .filter(|m| !m.is_expired(now))
        .ok_or(ApiError::NotFound(id))?;
    if meta.is_private() && !query.is_signed() {
        return Err(crate::error::SignError::Missing.into());
    }

    let range = match parse_range(header_str(&headers, header::RANGE), meta.size) {
        RangeRequest::Full => None,
        RangeRequest::Partial(r) => Some(r),
        RangeRequest::Unsatisfiable => {
            let mut response = ApiError::RangeNotSatisfiable { size: meta.size }.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", meta.size)) {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(response);
        }
    };

    let (status, span) = match &range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.clone()),
        None => (StatusCode::OK, 0..meta.size),
    };
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, span.end - span.start)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, format!("\"{}\"", hex::encode(id.as_bytes())))
        .header(header::CACHE_CONTROL, cache_control(&meta))
        .header(KIND_HEADER, meta.kind.as_str())
        .header(VISIBILITY_HEADER, meta.visibility.as_str());
    if range.is_some() {
        builder = builder.header(
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{}", span.start, span.end - 1, meta.size),
        );
    }

    let body = if method == HttpMethod::HEAD || span.is_empty() {
        Body::empty()
    } else {
        let artifact = server.storage().get(&id, range).await?;
        Body::from_stream(artifact.stream.inspect_ok(|chunk| {
            ArtifactsHttpMetrics::bytes_out(chunk.len() as u64);
        }))
    };
    builder.body(body).map_err(|err| {
        tracing::error!(target: "provernet::artifacts", %err, "response build failed");
        ApiError::Internal
    })
}

fn parse_id(text: &str) -> Result<ArtifactId, ApiError> {
    ArtifactId::from_str(text).map_err(|e| ApiError::BadId(e.to_string()))
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    header_str(headers, header::CONTENT_LENGTH).and_then(|v| v.parse().ok())
}

fn cache_control(meta: &ArtifactMeta) -> &'static str {
    // Content-addressed bytes never change; private ones must not sit in shared caches.
    if meta.is_private() {
        "private, max-age=31536000, immutable"
    } else {
        "public, max-age=31536000, immutable"
    }
}

fn stored_response(status: StatusCode, id: ArtifactId, size: u64, created: bool) -> Response {
    (status, Json(serde_json::json!({ "id": id, "size": size, "created": created })))
        .into_response()
}

/// The request body as a stream that counts bytes in and gives up after `idle` without data.
fn upload_stream(body: Body, idle: Duration) -> UploadStream {
    let stream = body.into_data_stream();
    futures::stream::unfold(Some(stream), move |state| async move {
        let mut stream = state?;
        match tokio::time::timeout(idle, stream.next()).await {
            Ok(Some(Ok(chunk))) => {
                ArtifactsHttpMetrics::bytes_in(chunk.len() as u64);
                Some((Ok(chunk), Some(stream)))
            }
            Ok(Some(Err(err))) => Some((Err(BoxError::from(err)), None)),
            Ok(None) => None,
            Err(_) => Some((Err(BoxError::from(format!("no data for {idle:?}"))), None)),
        }
    })
    .boxed()
}

/// Reads a body to its end, checking its size and hash, storing nothing.
async fn drain_verified(
    id: ArtifactId,
    mut body: UploadStream,
    limit: u64,
) -> Result<u64, StorageError> {
    let mut hasher = blake3::Hasher::new();
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|source| StorageError::Body { id, source })?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(StorageError::TooLarge { id, limit });
        }
        hasher.update(&chunk);
    }
    let actual = ArtifactId::from_hasher(&hasher);
    if actual != id {
        return Err(StorageError::Mismatch { expected: id, actual });
    }
    Ok(size)
}
