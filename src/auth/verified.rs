//! Tokens already verified. A client presents one token for many requests; checking
//! its signature each time is most of what validating it costs. A token seen before
//! is trusted again without that check only while the key that verified it is still
//! its issuer's key for that `kid` (asked of the issuer as for a new token, so a
//! withdrawn or replaced key stops it), and while its `exp` and `nbf` still hold.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jsonwebtoken::jwk::Jwk;
use serde_json::Value;

/// Most tokens kept; a full cache first drops the expired ones, then all.
const CAPACITY: usize = 1024;

/// A token whose signature and claims were checked.
#[derive(Debug)]
pub struct Verified {
    /// Index of its issuer among the trusted ones.
    pub issuer: usize,
    pub kid: Option<String>,
    /// The key it was verified with.
    pub jwk: Jwk,
    pub claims: Value,
}

impl Verified {
    /// Do its time claims still hold at `now` (Unix seconds), as `jsonwebtoken`
    /// judges them with `leeway`? Without `exp` it was never verified.
    pub fn in_time(&self, now: u64, leeway: u64) -> bool {
        let claim = |name: &str| self.claims.get(name).and_then(Value::as_u64);
        let unexpired = claim("exp").is_some_and(|exp| exp >= now.saturating_sub(leeway));
        let begun = claim("nbf").is_none_or(|nbf| nbf <= now + leeway);
        unexpired && begun
    }
}

#[derive(Default)]
pub struct VerifiedTokens {
    tokens: Mutex<HashMap<String, Arc<Verified>>>,
}

impl VerifiedTokens {
    pub fn get(&self, token: &str) -> Option<Arc<Verified>> {
        self.tokens.lock().ok()?.get(token).cloned()
    }

    pub fn insert(&self, token: &str, verified: Verified, now: u64, leeway: u64) {
        let Ok(mut tokens) = self.tokens.lock() else {
            return;
        };
        if tokens.len() >= CAPACITY {
            tokens.retain(|_, v| v.in_time(now, leeway));
            if tokens.len() >= CAPACITY {
                tokens.clear();
            }
        }
        tokens.insert(token.to_string(), Arc::new(verified));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn verified(claims: Value) -> Verified {
        Verified {
            issuer: 0,
            kid: None,
            jwk: serde_json::from_value(json!({"kty": "oct", "k": "c2VjcmV0"})).unwrap(),
            claims,
        }
    }

    #[test]
    fn time_claims_are_judged_again_with_the_leeway() {
        let now = 1_000_000;
        let token = verified(json!({"exp": now - 10, "nbf": now - 100}));
        assert!(!token.in_time(now, 0), "expired");
        assert!(token.in_time(now, 10), "within the leeway");
        assert!(!token.in_time(now, 9));
        let early = verified(json!({"exp": now + 100, "nbf": now + 5}));
        assert!(!early.in_time(now, 0), "not yet valid");
        assert!(early.in_time(now, 5));
        assert!(!verified(json!({})).in_time(now, 60), "no exp");
    }

    #[test]
    fn a_full_cache_keeps_what_is_still_in_time() {
        let cache = VerifiedTokens::default();
        let now = 1_000_000;
        cache.insert("live", verified(json!({"exp": now + 60})), now, 0);
        for i in 0..CAPACITY {
            cache.insert(
                &format!("old{i}"),
                verified(json!({"exp": now - 60})),
                now,
                0,
            );
        }
        assert!(cache.get("live").is_some(), "the live token survives");
        assert!(cache.get("old0").is_none(), "expired ones are dropped");
        assert!(cache.get(&format!("old{}", CAPACITY - 1)).is_some());
    }
}
