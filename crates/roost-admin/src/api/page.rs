//! Paging of lists: `?page=1&limit=100` (limit at most 1000) →
//! `{"data": [...], "meta": {"page", "limit", "count", "hasnext"}}`.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;

/// Largest `limit`.
pub(crate) const MAX_LIMIT: u32 = 1_000;

/// `?page&limit`.
#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Page number, from 1 (default 1).
    pub page: Option<u32>,
    /// Items per page, 1 to 1000 (default 100).
    pub limit: Option<u32>,
}

impl Paging {
    /// `(page, limit, offset)`, or 400.
    pub(crate) fn resolve(self) -> Result<(u32, u32, usize), ApiError> {
        let page = self.page.unwrap_or(1);
        let limit = self.limit.unwrap_or(100);
        if page == 0 {
            return Err(ApiError::bad_request("BAD_PAGE", "page starts at 1"));
        }
        if limit == 0 || limit > MAX_LIMIT {
            return Err(ApiError::bad_request("BAD_LIMIT", "limit is 1 to 1000"));
        }
        let offset = (page as usize - 1).saturating_mul(limit as usize);
        Ok((page, limit, offset))
    }
}

/// The `meta` of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Meta {
    /// This page.
    pub page: u32,
    /// Items per page.
    pub limit: u32,
    /// Matching items in all pages (`null` where counting would mean a full
    /// walk: retained messages).
    pub count: Option<usize>,
    /// Another page follows.
    pub hasnext: bool,
    /// Retained messages only: the cursor for `?after=` to get the next page
    /// without walking the earlier ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// Cluster-wide lists only: the nodes that gave no rows (down,
    /// unreachable, too slow), with why; empty when every node answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_nodes: Option<Vec<super::fanout::FailedNode>>,
}

/// A page of `T`.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T: ToSchema> {
    /// The items.
    pub data: Vec<T>,
    /// Where this page is.
    pub meta: Meta,
}

impl<T: ToSchema> List<T> {
    /// A page of a list whose total is known.
    pub(crate) fn of(data: Vec<T>, page: u32, limit: u32, offset: usize, total: usize) -> Self {
        let hasnext = offset + data.len() < total;
        Self {
            data,
            meta: Meta {
                page,
                limit,
                count: Some(total),
                hasnext,
                next: None,
                failed_nodes: None,
            },
        }
    }
}
