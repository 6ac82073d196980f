//! The `traceql` fuzz entry point: any text through the parser, the validator, the plan and
//! the evaluator, on the generated corpus. Beyond "no panic", it checks the plan's soundness
//! for arbitrary queries: a trace the evaluator returns is never ruled out by a page filter,
//! a page scan or the byte check of live traces.

use std::sync::OnceLock;

use opentelemetry_proto::tonic::trace::v1::TracesData;
use prost::Message;

use super::{corpus, Plan};
use crate::block::{self, BlockIndex, PageView};
use crate::ids::TraceId;
use crate::traceql::eval::{Evaluator, TraceView};

/// Traces in the fuzzing corpus: enough for every shape the generator makes, few enough for
/// thousands of runs a second.
const CORPUS_TRACES: u32 = 48;

struct Corpus {
    block: Vec<u8>,
    index: BlockIndex,
    traces: Vec<(TraceId, Vec<u8>, TracesData)>,
}

fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let (block, traces) = corpus::block(CORPUS_TRACES);
        let index = block::open_bytes(&block).expect("the generated block opens");
        let traces = traces
            .into_iter()
            .map(|(id, payload)| {
                let data = TracesData::decode(payload.as_slice()).expect("generated payload");
                (id, payload, data)
            })
            .collect();
        Corpus {
            block,
            index,
            traces,
        }
    })
}

/// Runs `data` (UTF-8 or not) as a TraceQL query; panics only on a bug.
pub fn fuzz_query(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(query) = crate::traceql::compile(text) else {
        return;
    };
    // Printing a query (tag queries compare it to `{ true }`) never panics.
    let _ = query.to_string();
    let Ok(evaluator) = Evaluator::new(query.clone()) else {
        return;
    };
    let corpus = corpus();
    let plan = Plan::new(&query, 0, 0);
    let mut candidates = std::collections::HashSet::new();
    for (number, entry) in corpus.index.pages.iter().enumerate() {
        let Some(plan) = &plan else { break };
        let bytes = block::page_bytes(&corpus.block, entry).expect("generated page");
        let view = PageView::decode(bytes).expect("generated page decodes");
        let ids = view.trace_ids().expect("generated trace IDs");
        let scan = plan.scan(&view).expect("a generated page scans");
        let open = plan.page_may_match(corpus.index.page_filter(number));
        for c in scan.candidates.iter().filter(|c| c.strong) {
            if let (true, Some(id)) = (open, ids.get(c.index)) {
                candidates.insert(*id);
            }
        }
    }
    for (id, payload, data) in &corpus.traces {
        let view = TraceView::new(&data.resource_spans);
        if evaluator.eval(&view).is_empty() {
            continue;
        }
        if let Some(plan) = &plan {
            assert!(
                plan.payload_may_match(&[payload]),
                "{text}: the bytes of matching trace {id} were ruled out"
            );
            assert!(
                candidates.contains(id),
                "{text}: matching trace {id} was ruled out by its page's filter or columns"
            );
        }
    }
}
