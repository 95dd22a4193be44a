use super::*;
use rsa::pkcs8::DecodePrivateKey as _;

const NESTED: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJl";

fn fixture_key() -> rsa::RsaPrivateKey {
    rsa::RsaPrivateKey::from_pkcs8_pem(include_str!("fixtures/rp-test-key.pem"))
        .expect("fixture key")
}

#[test]
fn opens_what_an_independent_library_sealed_with_each_required_algorithm() {
    let key = fixture_key();
    for sealed in [
        include_str!("fixtures/rsa-oaep-a128cbc-hs256.jwe"),
        include_str!("fixtures/rsa-oaep-256-a256cbc-hs512.jwe"),
    ] {
        let plain = decrypt(sealed.trim(), &key).expect("opens");
        assert_eq!(plain, NESTED.as_bytes());
        assert_eq!(key_id(sealed).as_deref(), Some("test"));
    }
}

#[test]
fn round_trip_for_every_pair_the_rules_name() {
    let key = fixture_key();
    for wrap in [KeyWrap::RsaOaep, KeyWrap::RsaOaep256] {
        for enc in [ContentEnc::A128CbcHs256, ContentEnc::A256CbcHs512] {
            let sealed = encrypt(
                NESTED.as_bytes(),
                &key.to_public_key(),
                Some("k"),
                wrap,
                enc,
            )
            .expect("seals");
            assert_eq!(decrypt(&sealed, &key).expect("opens"), NESTED.as_bytes());
        }
    }
}

/// Any change to the header, the wrapped key, the IV, the ciphertext or the tag is refused
/// alike, before the content is decrypted.
#[test]
fn every_altered_part_is_refused() {
    let key = fixture_key();
    let sealed = include_str!("fixtures/rsa-oaep-256-a256cbc-hs512.jwe").trim();
    let parts: Vec<&str> = sealed.split('.').collect();
    for i in 1..5 {
        let mut bytes = unb64(parts[i], "test").expect("base64");
        bytes[0] ^= 1;
        let mut altered: Vec<String> = parts.iter().map(|p| (*p).to_string()).collect();
        altered[i] = b64(&bytes);
        assert_eq!(
            decrypt(&altered.join("."), &key),
            Err(JweError::Undecryptable),
            "part {i}"
        );
    }
    // The header is authenticated too: a different `kid` in it breaks the tag.
    let header = r#"{"alg":"RSA-OAEP-256","enc":"A256CBC-HS512","cty":"JWT","kid":"other"}"#;
    let swapped = format!("{}.{}", b64(header.as_bytes()), parts[1..].join("."));
    assert_eq!(decrypt(&swapped, &key), Err(JweError::Undecryptable));
}

#[test]
fn another_key_cannot_open_it() {
    let other = rsa::RsaPrivateKey::new(&mut OsRng, 2048).expect("key");
    let sealed = include_str!("fixtures/rsa-oaep-a128cbc-hs256.jwe").trim();
    assert_eq!(decrypt(sealed, &other), Err(JweError::Undecryptable));
}

#[test]
fn forbidden_or_unknown_algorithms_and_shapes_are_refused() {
    let key = fixture_key();
    let sealed = include_str!("fixtures/rsa-oaep-a128cbc-hs256.jwe").trim();
    let rest = sealed.split_once('.').expect("parts").1;
    for header in [
        r#"{"alg":"RSA1_5","enc":"A128CBC-HS256"}"#,
        r#"{"alg":"dir","enc":"A128CBC-HS256"}"#,
        r#"{"alg":"RSA-OAEP","enc":"A128GCM"}"#,
        r#"{"alg":"RSA-OAEP","enc":"A128CBC-HS256","zip":"DEF"}"#,
        r#"{"alg":"RSA-OAEP","enc":"A128CBC-HS256","crit":["exp"]}"#,
    ] {
        let jwe = format!("{}.{rest}", b64(header.as_bytes()));
        assert_eq!(decrypt(&jwe, &key), Err(JweError::Unsupported), "{header}");
    }
    for malformed in ["", "a.b.c", "a.b.c.d.e.f", "!!.b.c.d.e"] {
        assert_eq!(
            decrypt(malformed, &key),
            Err(JweError::Malformed),
            "{malformed}"
        );
    }
    assert_eq!(
        decrypt(&"a".repeat(MAX_JWE_LEN + 1), &key),
        Err(JweError::Malformed)
    );
}
