//! Compact JWE (RFC 7516) as the SPID/CIE OpenID Connect rules use it for UserInfo: the
//! content key wrapped with the relying party's RSA key (`RSA-OAEP` or `RSA-OAEP-256`), the
//! content encrypted with `A128CBC-HS256` or `A256CBC-HS512` (RFC 7518 §5.2). Opening
//! gives the nested JWS, which the caller then verifies as a signed UserInfo response.
//!
//! The authentication tag is checked, in constant time, before anything is decrypted, so
//! a padding error is never observable; a key that does not unwrap is replaced by a random
//! one (RFC 7516 §11.5), so a bad wrapping and a bad tag fail alike. `zip` and `crit` are
//! refused: the rules use neither.

use aes::cipher::{BlockDecryptMut as _, BlockEncryptMut as _, KeyIvInit as _, block_padding};
use hmac::Hmac;
use rand_core::{OsRng, RngCore as _};
use serde::Deserialize;
use subtle::ConstantTimeEq as _;

use crate::jwt::{b64, unb64};

/// A UserInfo JWE larger than this is not a real provider's.
const MAX_JWE_LEN: usize = 64 * 1024;

/// Why a JWE cannot be opened. Deliberately coarse: which check failed is not said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JweError {
    #[error("not a compact JWE")]
    Malformed,
    #[error("key or content encryption algorithm not supported")]
    Unsupported,
    #[error("cannot be decrypted with this key")]
    Undecryptable,
}

/// How the content key is wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyWrap {
    RsaOaep,
    RsaOaep256,
}

impl KeyWrap {
    fn name(self) -> &'static str {
        match self {
            KeyWrap::RsaOaep => "RSA-OAEP",
            KeyWrap::RsaOaep256 => "RSA-OAEP-256",
        }
    }

    fn parse(name: &str) -> Result<Self, JweError> {
        match name {
            "RSA-OAEP" => Ok(KeyWrap::RsaOaep),
            "RSA-OAEP-256" => Ok(KeyWrap::RsaOaep256),
            // RSA1_5 is forbidden by the rules; anything else is not theirs.
            _ => Err(JweError::Unsupported),
        }
    }

    fn padding(self) -> rsa::Oaep {
        match self {
            KeyWrap::RsaOaep => rsa::Oaep::new::<sha1::Sha1>(),
            KeyWrap::RsaOaep256 => rsa::Oaep::new::<sha2::Sha256>(),
        }
    }
}

/// How the content is encrypted: AES-CBC with HMAC-SHA-2, the key split in a MAC half and
/// an encryption half.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentEnc {
    A128CbcHs256,
    A256CbcHs512,
}

impl ContentEnc {
    fn name(self) -> &'static str {
        match self {
            ContentEnc::A128CbcHs256 => "A128CBC-HS256",
            ContentEnc::A256CbcHs512 => "A256CBC-HS512",
        }
    }

    fn parse(name: &str) -> Result<Self, JweError> {
        match name {
            "A128CBC-HS256" => Ok(ContentEnc::A128CbcHs256),
            "A256CBC-HS512" => Ok(ContentEnc::A256CbcHs512),
            _ => Err(JweError::Unsupported),
        }
    }

    /// Bytes of the whole content key (MAC key and encryption key).
    fn key_len(self) -> usize {
        match self {
            ContentEnc::A128CbcHs256 => 32,
            ContentEnc::A256CbcHs512 => 64,
        }
    }

    /// The tag: HMAC over AAD, IV, ciphertext and AAD's length in bits, truncated to half.
    fn tag(self, mac_key: &[u8], aad: &[u8], iv: &[u8], ciphertext: &[u8]) -> Vec<u8> {
        let al = u64::try_from(aad.len())
            .unwrap_or(u64::MAX)
            .saturating_mul(8)
            .to_be_bytes();
        let full = match self {
            ContentEnc::A128CbcHs256 => {
                mac::<Hmac<sha2::Sha256>>(mac_key, [aad, iv, ciphertext, &al])
            }
            ContentEnc::A256CbcHs512 => {
                mac::<Hmac<sha2::Sha512>>(mac_key, [aad, iv, ciphertext, &al])
            }
        };
        full[..self.key_len() / 2].to_vec()
    }

    fn decrypt(self, enc_key: &[u8], iv: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, JweError> {
        let plain = match self {
            ContentEnc::A128CbcHs256 => cbc::Decryptor::<aes::Aes128>::new_from_slices(enc_key, iv)
                .map_err(|_| JweError::Undecryptable)?
                .decrypt_padded_vec_mut::<block_padding::Pkcs7>(ciphertext),
            ContentEnc::A256CbcHs512 => cbc::Decryptor::<aes::Aes256>::new_from_slices(enc_key, iv)
                .map_err(|_| JweError::Undecryptable)?
                .decrypt_padded_vec_mut::<block_padding::Pkcs7>(ciphertext),
        };
        plain.map_err(|_| JweError::Undecryptable)
    }

    fn encrypt(self, enc_key: &[u8], iv: &[u8], plain: &[u8]) -> Result<Vec<u8>, JweError> {
        Ok(match self {
            ContentEnc::A128CbcHs256 => cbc::Encryptor::<aes::Aes128>::new_from_slices(enc_key, iv)
                .map_err(|_| JweError::Undecryptable)?
                .encrypt_padded_vec_mut::<block_padding::Pkcs7>(plain),
            ContentEnc::A256CbcHs512 => cbc::Encryptor::<aes::Aes256>::new_from_slices(enc_key, iv)
                .map_err(|_| JweError::Undecryptable)?
                .encrypt_padded_vec_mut::<block_padding::Pkcs7>(plain),
        })
    }
}

fn mac<M: hmac::Mac + hmac::digest::KeyInit>(key: &[u8], parts: [&[u8]; 4]) -> Vec<u8> {
    let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    for part in parts {
        m.update(part);
    }
    m.finalize().into_bytes().to_vec()
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    enc: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    zip: Option<serde_json::Value>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// The protected header's `kid`, to pick the key before opening; `None` if absent or if
/// the text is no JWE.
pub fn key_id(compact: &str) -> Option<String> {
    let header = compact.split('.').next()?;
    let header: Header = serde_json::from_slice(&unb64(header, "jwe").ok()?).ok()?;
    header.kid
}

/// Opens a compact JWE with the relying party's private key: the plaintext (a JWS for
/// UserInfo).
pub fn decrypt(compact: &str, key: &rsa::RsaPrivateKey) -> Result<Vec<u8>, JweError> {
    if compact.len() > MAX_JWE_LEN {
        return Err(JweError::Malformed);
    }
    let parts: Vec<&str> = compact.split('.').collect();
    let [header_b64, wrapped, iv, ciphertext, tag] = parts.as_slice() else {
        return Err(JweError::Malformed);
    };
    let decode = |part: &str| unb64(part, "jwe").map_err(|_| JweError::Malformed);
    let header: Header =
        serde_json::from_slice(&decode(header_b64)?).map_err(|_| JweError::Malformed)?;
    if header.zip.is_some() || header.crit.is_some() {
        return Err(JweError::Unsupported);
    }
    let wrap = KeyWrap::parse(&header.alg)?;
    let enc = ContentEnc::parse(&header.enc)?;
    let (wrapped, iv, ciphertext, tag) = (
        decode(wrapped)?,
        decode(iv)?,
        decode(ciphertext)?,
        decode(tag)?,
    );
    if iv.len() != 16 {
        return Err(JweError::Malformed);
    }
    // Blinded, so the private-key operation's time does not follow the key; a key that
    // does not unwrap (or has the wrong size) becomes a random one and fails at the tag.
    let cek = key
        .decrypt_blinded(&mut OsRng, wrap.padding(), &wrapped)
        .ok()
        .filter(|cek| cek.len() == enc.key_len())
        .unwrap_or_else(|| {
            let mut random = vec![0u8; enc.key_len()];
            OsRng.fill_bytes(&mut random);
            random
        });
    let (mac_key, enc_key) = cek.split_at(enc.key_len() / 2);
    let expected = enc.tag(mac_key, header_b64.as_bytes(), &iv, &ciphertext);
    if !bool::from(expected.ct_eq(&tag)) {
        return Err(JweError::Undecryptable);
    }
    enc.decrypt(enc_key, &iv, &ciphertext)
}

/// Seals `plain` for the holder of `key`, as a provider does for UserInfo; `cty: JWT`
/// says the content is a nested JWT.
pub fn encrypt(
    plain: &[u8],
    key: &rsa::RsaPublicKey,
    kid: Option<&str>,
    wrap: KeyWrap,
    enc: ContentEnc,
) -> Result<String, JweError> {
    let mut header = serde_json::json!({ "alg": wrap.name(), "enc": enc.name(), "cty": "JWT" });
    if let Some(kid) = kid {
        header["kid"] = serde_json::Value::String(kid.to_string());
    }
    let header_b64 = b64(header.to_string().as_bytes());
    let mut cek = vec![0u8; enc.key_len()];
    OsRng.fill_bytes(&mut cek);
    let mut iv = [0u8; 16];
    OsRng.fill_bytes(&mut iv);
    let wrapped = key
        .encrypt(&mut OsRng, wrap.padding(), &cek)
        .map_err(|_| JweError::Unsupported)?;
    let (mac_key, enc_key) = cek.split_at(enc.key_len() / 2);
    let ciphertext = enc.encrypt(enc_key, &iv, plain)?;
    let tag = enc.tag(mac_key, header_b64.as_bytes(), &iv, &ciphertext);
    Ok(format!(
        "{header_b64}.{}.{}.{}.{}",
        b64(&wrapped),
        b64(&iv),
        b64(&ciphertext),
        b64(&tag)
    ))
}

#[cfg(test)]
mod tests;
