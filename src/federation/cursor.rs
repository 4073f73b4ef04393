//! Page tokens: what a next/previous link carries. Sealed with XChaCha20-Poly1305, so
//! a client can neither read them (no partner or identifier shows) nor alter them,
//! and they expire. The key may be shared, so any instance can open them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};

use crate::fhir::page::Cursor;

const AAD: &[u8] = b"shcr-facade page token v1";
const NONCE_LEN: usize = 24;

/// The state of a paged search, enough for any instance to produce the next page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageToken {
    /// What was searched: a type (`Observation`) or `Patient/{nhs}/$everything`.
    pub target: String,
    /// The search as the facade understood it (canonical query pairs).
    pub query: Vec<(String, String)>,
    pub cursor: Cursor,
    /// Whom the link was issued to (`Principal::holder`): nobody else may follow it.
    pub holder: String,
    /// Unix seconds after which the token is refused.
    pub expires_at: i64,
    /// Partners an earlier page saw answering this search in its order, which a
    /// later page may ask only for what follows (`federation::ordered`).
    #[serde(default)]
    pub sorted_by: Vec<String>,
    /// Of those, partners whose whole answer fitted in a page (`LaterPage::fits_a_page`).
    #[serde(default)]
    pub fits_a_page: Vec<String>,
    /// How many matches the last page gathered whole counted, for pages gathered in part.
    #[serde(default)]
    pub total: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the page link is not valid; repeat the search")]
    Invalid,
    #[error("the page link has expired; repeat the search")]
    Expired,
}

pub struct PageSealer {
    cipher: XChaCha20Poly1305,
    ttl_s: i64,
}

impl PageSealer {
    pub fn new(key: [u8; 32], ttl_s: u64) -> PageSealer {
        PageSealer {
            cipher: XChaCha20Poly1305::new(&key.into()),
            ttl_s: ttl_s as i64,
        }
    }

    /// A fresh random key, for a single instance without a configured one.
    pub fn random_key() -> [u8; 32] {
        XChaCha20Poly1305::generate_key(&mut OsRng).into()
    }

    pub fn expiry_from_now(&self) -> i64 {
        chrono::Utc::now().timestamp() + self.ttl_s
    }

    pub fn seal(&self, token: &PageToken) -> String {
        let plaintext = serde_json::to_vec(token).expect("page token serialises");
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &plaintext,
                    aad: AAD,
                },
            )
            .expect("encryption of a small buffer cannot fail");
        let mut sealed = nonce.to_vec();
        sealed.extend(ciphertext);
        URL_SAFE_NO_PAD.encode(sealed)
    }

    pub fn open(&self, sealed: &str) -> Result<PageToken, TokenError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| TokenError::Invalid)?;
        if bytes.len() <= NONCE_LEN {
            return Err(TokenError::Invalid);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let plaintext = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: AAD,
                },
            )
            .map_err(|_| TokenError::Invalid)?;
        let token: PageToken =
            serde_json::from_slice(&plaintext).map_err(|_| TokenError::Invalid)?;
        if token.expires_at < chrono::Utc::now().timestamp() {
            return Err(TokenError::Expired);
        }
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhir::page::SortKey;
    use proptest::prelude::*;

    fn token(expires_at: i64) -> PageToken {
        PageToken {
            target: "Observation".into(),
            query: vec![("patient".into(), "Patient/9000000009".into())],
            cursor: Cursor::After(SortKey {
                rank: 1,
                date: Some(1_700_000_000_000),
                id: "Observation/gp.o1".into(),
            }),
            holder: "0123456789abcdef".into(),
            expires_at,
            sorted_by: vec!["riverside-gp".into()],
            fits_a_page: vec!["riverside-gp".into()],
            total: Some(120),
        }
    }

    #[test]
    fn seals_opens_and_reveals_nothing() {
        let sealer = PageSealer::new(PageSealer::random_key(), 60);
        let t = token(sealer.expiry_from_now());
        let sealed = sealer.seal(&t);
        assert_eq!(sealer.open(&sealed).unwrap(), t);
        let raw = String::from_utf8_lossy(&URL_SAFE_NO_PAD.decode(&sealed).unwrap()).to_string();
        assert!(!raw.contains("9000000009") && !raw.contains("gp.o1"));
        assert!(!raw.contains("riverside-gp"));
        // Another instance's key cannot open it.
        assert_eq!(
            PageSealer::new(PageSealer::random_key(), 60).open(&sealed),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn expired_tokens_are_refused() {
        let sealer = PageSealer::new(PageSealer::random_key(), 60);
        let sealed = sealer.seal(&token(chrono::Utc::now().timestamp() - 1));
        assert_eq!(sealer.open(&sealed), Err(TokenError::Expired));
    }

    proptest! {
        #[test]
        fn any_single_byte_change_is_detected(position in 0usize..200, flip in 1u8..=255) {
            let sealer = PageSealer::new([7; 32], 60);
            let sealed = sealer.seal(&token(sealer.expiry_from_now()));
            let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
            let i = position % bytes.len();
            bytes[i] ^= flip;
            prop_assert_eq!(sealer.open(&URL_SAFE_NO_PAD.encode(bytes)), Err(TokenError::Invalid));
        }
    }
}
