//! Copying a trace from one page into a [`PageBuilder`] column to column, for compaction:
//! its rows are appended with their dictionary indices translated, and nothing is rebuilt
//! into OTLP bytes or taken apart again. The page written is byte for byte the one
//! `PageBuilder::add` writes for the trace's rebuilt payload: entries are interned in the
//! order `add_columnar` interns them (Resource rows and their scopes first, then the spans),
//! so the output dictionary, the facts and every column come out the same.

use std::borrow::Cow;

use super::{
    col, fact_row, put_varint, service_of, unzigzag, zigzag, AllColumns, BlockError, Dict,
    Dictionary, FactRow, PageBuilder, PageView, Walk, SPAN_ATTRS, SPAN_DURATION, SPAN_ID,
    SPAN_KIND, SPAN_NAME, SPAN_PARENT, SPAN_REST, SPAN_REST_LENS, SPAN_START, SPAN_STATUS,
    SPAN_STATUS_MSG, STATUS_ABSENT, TRACE_FORM, TRACE_FORM_COLUMNAR, TRACE_RS, TRACE_START,
};
use super::{
    put_attr_row, span_facts, PARENT_RAW, RS_RESOURCE, RS_SCHEMA, RS_SCOPES, RS_SERVICE, SS_SCHEMA,
    SS_SCOPE, SS_SPANS,
};
use crate::ids::TraceId;

/// A page's columns, decompressed and owned, with the trace and span counts its header
/// gave.
struct OwnedColumns {
    all: AllColumns<'static>,
    trace_count: u32,
    span_count: u32,
}

self_cell::self_cell!(
    struct LoadedPage {
        owner: OwnedColumns,
        #[covariant]
        dependent: Walk,
    }
);

/// One page being read trace by trace, in order, by a merge: each trace is either copied
/// into a builder ([`PageCursor::copy_into`], columnar traces) or rebuilt into its payload
/// ([`PageCursor::take_payload`]).
pub struct PageCursor {
    page: LoadedPage,
    next: usize,
    trace_count: usize,
    /// `d+1` in the builder's dictionary of each entry of this page's dictionary, 0 while
    /// not looked up; valid for the builder generation `generation` only.
    remap: Vec<u64>,
    generation: u64,
}

impl PageCursor {
    /// Verifies and decompresses a page (frame, checksum, directory, columns).
    pub fn load(bytes: &[u8]) -> Result<PageCursor, BlockError> {
        let view = PageView::decode(bytes)?;
        let columns = view
            .all_columns()?
            .columns
            .into_iter()
            .map(|column| Cow::Owned(column.into_owned()))
            .collect();
        let owner = OwnedColumns {
            all: AllColumns { columns },
            trace_count: view.trace_count,
            span_count: view.span_count,
        };
        let page = LoadedPage::try_new(owner, |owner| {
            Walk::new(&owner.all, owner.trace_count, owner.span_count)
        })?;
        let entries = page.borrow_dependent().dict.len();
        Ok(PageCursor {
            page,
            next: 0,
            trace_count: view.trace_count as usize,
            remap: vec![0; entries],
            generation: u64::MAX,
        })
    }

    /// The ID of the next trace; `None` past the last.
    pub fn peek(&self) -> Option<TraceId> {
        if self.next >= self.trace_count {
            return None;
        }
        self.page.borrow_dependent().trace_id(self.next).ok()
    }

    /// Whether the next trace is stored as columns (else raw: only its payload can be taken).
    pub fn next_is_columnar(&self) -> bool {
        let walk = self.page.borrow_dependent();
        walk.form.get(self.next) == Some(&TRACE_FORM_COLUMNAR)
    }

    /// The next trace's payload, rebuilt as `PageView::traces` rebuilds it.
    pub fn take_payload(&mut self) -> Result<(TraceId, Vec<u8>), BlockError> {
        let index = self.next;
        let mut payload = Vec::new();
        let trace_id = self.page.with_dependent_mut(|_, walk| {
            let trace_id = walk.trace_id(index)?;
            walk.trace(index, Some(&mut payload))?;
            Ok::<_, BlockError>(trace_id)
        })?;
        self.next += 1;
        Ok((trace_id, payload))
    }

    /// Appends the next trace, which must be columnar, to `builder`. On an error (a page
    /// whose columns disagree with each other) the builder holds part of the trace and must
    /// be dropped.
    pub(in crate::block) fn copy_into(
        &mut self,
        builder: &mut PageBuilder,
    ) -> Result<TraceId, BlockError> {
        if !self.next_is_columnar() {
            return Err(BlockError::Malformed(
                "copy of a trace that is not columnar".to_string(),
            ));
        }
        if self.generation != builder.generation {
            self.remap.fill(0);
            self.generation = builder.generation;
        }
        let index = self.next;
        let remap = &mut self.remap;
        let trace_id = self
            .page
            .with_dependent_mut(|_, walk| copy_trace(walk, index, builder, remap))?;
        self.next += 1;
        Ok(trace_id)
    }
}

/// The builder's `d+1` for this page's `d+1` `plus_one`, interning the entry on first use.
fn translate(
    remap: &mut [u64],
    from: &Dict<'_>,
    to: &mut Dictionary,
    plus_one: u64,
) -> Result<u64, BlockError> {
    let Some(index) = plus_one.checked_sub(1) else {
        return Ok(0);
    };
    let slot = usize::try_from(index)
        .ok()
        .and_then(|index| remap.get_mut(index))
        .ok_or_else(|| BlockError::Malformed("dictionary index out of range".to_string()))?;
    if *slot == 0 {
        *slot = u64::from(to.intern(from.get(index)?)) + 1;
    }
    Ok(*slot)
}

fn copy_trace(
    walk: &mut Walk<'_>,
    index: usize,
    builder: &mut PageBuilder,
    remap: &mut [u64],
) -> Result<TraceId, BlockError> {
    let trace_id = walk.trace_id(index)?;
    builder.begin_trace(trace_id);
    let delta = unzigzag(walk.trace_start.next()?);
    let trace_start = walk.previous_start.wrapping_add(delta as u64);
    walk.previous_start = trace_start;
    let PageBuilder {
        dict,
        services,
        columns,
        facts,
        ..
    } = builder;
    col(columns, TRACE_FORM).push(TRACE_FORM_COLUMNAR);
    let start_delta = trace_start.wrapping_sub(builder.previous_start) as i64;
    put_varint(zigzag(start_delta), col(columns, TRACE_START));
    builder.previous_start = trace_start;
    let resource_rows = walk.trace_rs.next()?;
    put_varint(resource_rows, col(columns, TRACE_RS));
    // (resource `d+1`, span rows) of each scope row, for the spans below.
    let mut scopes: Vec<(u64, u64)> = Vec::new();
    for _ in 0..resource_rows {
        let resource_in = walk.rs_resource.next()?;
        let resource = translate(remap, &walk.dict, dict, resource_in)?;
        facts.insert(fact_row(FactRow::Resource, resource, 0));
        put_varint(resource, col(columns, RS_RESOURCE));
        let schema = translate(remap, &walk.dict, dict, walk.rs_schema.next()?)?;
        put_varint(schema, col(columns, RS_SCHEMA));
        walk.rs_service.next()?;
        let bytes = walk.dict.optional(resource_in)?;
        let service = service_of(services, dict, resource, bytes);
        put_varint(service, col(columns, RS_SERVICE));
        let scope_rows = walk.rs_scopes.next()?;
        put_varint(scope_rows, col(columns, RS_SCOPES));
        for _ in 0..scope_rows {
            let scope = translate(remap, &walk.dict, dict, walk.ss_scope.next()?)?;
            put_varint(scope, col(columns, SS_SCOPE));
            let schema = translate(remap, &walk.dict, dict, walk.ss_schema.next()?)?;
            put_varint(schema, col(columns, SS_SCHEMA));
            let spans = walk.ss_spans.next()?;
            put_varint(spans, col(columns, SS_SPANS));
            scopes.push((resource, spans));
        }
    }
    for (resource, spans) in scopes {
        for _ in 0..spans {
            let row = walk.span_row;
            walk.span_row += 1;
            builder.span_count += 1;
            col(columns, SPAN_ID).extend_from_slice(walk.span_id_at(row)?);
            let parent = walk.span_parent.next()?;
            if parent == 1 {
                col(columns, PARENT_RAW).extend_from_slice(walk.parent_raw.take(8)?);
            }
            put_varint(parent, col(columns, SPAN_PARENT));
            let relative_start = walk.span_start.next()?;
            put_varint(relative_start, col(columns, SPAN_START));
            let duration = walk.span_duration.next()?;
            put_varint(duration, col(columns, SPAN_DURATION));
            let start = trace_start.wrapping_add(relative_start);
            let end = start.wrapping_add(unzigzag(duration) as u64);
            builder.min_start = builder.min_start.min(start);
            builder.max_end = builder.max_end.max(end.max(start));
            let missing = || BlockError::Malformed("span row out of range".to_string());
            let kind = *walk.span_kind.get(row).ok_or_else(missing)?;
            col(columns, SPAN_KIND).push(kind);
            let code = *walk.span_status.get(row).ok_or_else(missing)?;
            col(columns, SPAN_STATUS).push(code);
            let message = translate(remap, &walk.dict, dict, walk.span_status_msg.next()?)?;
            put_varint(message, col(columns, SPAN_STATUS_MSG));
            let name = translate(remap, &walk.dict, dict, walk.span_name.next()?)?;
            put_varint(name, col(columns, SPAN_NAME));
            let status = (code != STATUS_ABSENT).then_some(code);
            span_facts(facts, resource, status, kind, name);
            let attrs = walk.span_attrs.next()?;
            put_varint(attrs, col(columns, SPAN_ATTRS));
            for _ in 0..attrs {
                builder.attr_count += 1;
                let key = translate(remap, &walk.dict, dict, walk.attr_key.next()?)?;
                let value = translate(remap, &walk.dict, dict, walk.attr_value.next()?)?;
                put_attr_row(columns, facts, key, value);
            }
            let rest_len = walk.rest_lens.next()?;
            let rest = walk
                .rest
                .take(usize::try_from(rest_len).unwrap_or(usize::MAX))?;
            put_varint(rest_len, col(columns, SPAN_REST_LENS));
            col(columns, SPAN_REST).extend_from_slice(rest);
        }
    }
    Ok(trace_id)
}
