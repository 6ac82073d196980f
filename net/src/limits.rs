//! Ingestion rate limits per tenant (`overrides.defaults.ingestion.rate_limit_bytes` and
//! `burst_size_bytes`), shared by every thread without a lock on the hot path.
//!
//! Each tenant has one GCRA cell (generic cell rate algorithm): a single atomic "theoretical
//! arrival time". A request of `n` bytes is allowed when the cell's time is no further ahead
//! of now than the burst allows, and moves it `n / rate` ahead. This is the token bucket of
//! Go's `rate.Limiter` (what Tempo uses) in one compare-and-swap.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use allegro_engine::Tenant;

/// A byte-rate limiter for one tenant.
#[derive(Debug)]
pub struct Gcra {
    /// Nanoseconds since `epoch` at which the bucket is full again.
    tat_nanos: AtomicU64,
}

/// All tenants' limiters.
pub struct RateLimiters {
    rate_bytes_per_sec: u64,
    burst_bytes: u64,
    epoch: Instant,
    cells: RwLock<HashMap<Tenant, Arc<Gcra>>>,
}

thread_local! {
    static LOCAL: std::cell::RefCell<HashMap<Tenant, Arc<Gcra>>> = std::cell::RefCell::new(HashMap::new());
}

impl RateLimiters {
    /// `rate_bytes_per_sec == 0` disables limiting.
    pub fn new(rate_bytes_per_sec: u64, burst_bytes: u64) -> RateLimiters {
        RateLimiters {
            rate_bytes_per_sec,
            burst_bytes,
            epoch: Instant::now(),
            cells: RwLock::new(HashMap::new()),
        }
    }

    fn cell(&self, tenant: &Tenant) -> Arc<Gcra> {
        if let Some(cell) = LOCAL.with(|l| l.borrow().get(tenant).cloned()) {
            return cell;
        }
        // Once per tenant per thread: the shared map behind a lock.
        let cell = {
            let mut cells = self.cells.write().unwrap_or_else(|e| e.into_inner());
            cells
                .entry(tenant.clone())
                .or_insert_with(|| {
                    Arc::new(Gcra {
                        tat_nanos: AtomicU64::new(0),
                    })
                })
                .clone()
        };
        LOCAL.with(|l| l.borrow_mut().insert(tenant.clone(), cell.clone()));
        cell
    }

    /// Takes `bytes` from the tenant's allowance, or returns the limit (bytes/s) when over it.
    pub fn allow(&self, tenant: &Tenant, bytes: u64) -> Result<(), u64> {
        self.allow_at(tenant, bytes, self.epoch.elapsed().as_nanos() as u64)
    }

    fn allow_at(&self, tenant: &Tenant, bytes: u64, now_nanos: u64) -> Result<(), u64> {
        if self.rate_bytes_per_sec == 0 {
            return Ok(());
        }
        let limit = self.rate_bytes_per_sec;
        if bytes > self.burst_bytes {
            return Err(limit);
        }
        let cost = (u128::from(bytes) * 1_000_000_000 / u128::from(limit)) as u64;
        let burst = (u128::from(self.burst_bytes) * 1_000_000_000 / u128::from(limit)) as u64;
        let cell = self.cell(tenant);
        let mut tat = cell.tat_nanos.load(Ordering::Relaxed);
        loop {
            let start = tat.max(now_nanos);
            let new_tat = start + cost;
            if new_tat > now_nanos + burst {
                return Err(limit);
            }
            match cell.tat_nanos.compare_exchange_weak(
                tat,
                new_tat,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(current) => tat = current,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let limiters = RateLimiters::new(1000, 2000);
        let t = Tenant::single();
        // The burst is available at once.
        assert!(limiters.allow_at(&t, 1500, 0).is_ok());
        assert!(limiters.allow_at(&t, 500, 0).is_ok());
        assert_eq!(limiters.allow_at(&t, 1, 0), Err(1000));
        // One second later, 1000 bytes more.
        assert!(limiters.allow_at(&t, 1000, 1_000_000_000).is_ok());
        assert!(limiters.allow_at(&t, 10, 1_000_000_000).is_err());
        // A request larger than the burst never fits.
        assert!(limiters.allow_at(&t, 2001, 100_000_000_000).is_err());
        // Tenants are independent.
        let other = Tenant::parse("other").unwrap();
        assert!(limiters.allow_at(&other, 2000, 0).is_ok());
    }

    #[test]
    fn zero_rate_disables() {
        let limiters = RateLimiters::new(0, 0);
        assert!(limiters.allow(&Tenant::single(), u64::MAX).is_ok());
    }
}
