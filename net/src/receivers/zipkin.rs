//! Zipkin (`distributor.receivers.zipkin`, `:9411`), as the Collector's zipkin receiver
//! answers: a path containing `api/v1/spans` is Zipkin v1 (JSON), any other path v2 (JSON, or
//! protobuf with `Content-Type: application/x-protobuf`); `Content-Encoding` gzip, deflate,
//! zlib. 202 Accepted with an empty body once the spans are durable; 400 with the reason for a
//! body that cannot be read; 429/503 with `Retry-After` when the client should retry.

use allegro_receivers::zipkin;
use prost::Message;

use crate::api;
use crate::ingest::{self, Receiver};
use crate::receivers::{media_type, text_error, text_preamble};
use crate::shared::Shared;

pub async fn handle(request: api::Request, shared: &Shared) -> api::Response {
    let (tenant, body) = match text_preamble(&request, shared, Receiver::Zipkin) {
        Ok(taken) => taken,
        Err(response) => return response,
    };
    let v1 = request.path.contains("api/v1/spans");
    let media = media_type(&request);
    let options = zipkin::Options {
        parse_string_tags: shared.settings.receivers.zipkin_parse_string_tags,
    };
    let now_unix_nano = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let decoded = match (v1, media.as_str()) {
        (true, "application/x-thrift") => {
            shared.metrics.receivers.count_malformed(Receiver::Zipkin);
            return text_error(
                415,
                "Zipkin v1 thrift is not supported by Allegro; send Zipkin v1 or v2 JSON, or v2 protobuf",
                false,
            );
        }
        (true, _) => zipkin::decode_v1_json_with(&body, &options, now_unix_nano),
        (false, "application/x-protobuf") => zipkin::decode_v2_proto_with(&body, &options),
        (false, _) => zipkin::decode_v2_json_with(&body, &options),
    };
    let decoded = match decoded {
        Ok(decoded) => decoded,
        Err(err) => {
            shared.metrics.receivers.count_malformed(Receiver::Zipkin);
            return text_error(400, &err.message, false);
        }
    };
    let message = decoded.encode_to_vec();
    match ingest::ingest(shared, &tenant, Receiver::Zipkin, &message, None).await {
        Ok(_) => api::text_response(202, ""),
        Err(err) => text_error(err.http_status(), &err.message(), err.retryable()),
    }
}
