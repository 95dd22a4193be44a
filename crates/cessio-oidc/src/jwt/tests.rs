//! The verifier on crafted tokens: one refusal per test, each from a token that is right
//! in every other respect.

use serde_json::{Value, json};

use super::*;

const ISSUER: &str = "https://gateway.example.it";
const CLIENT: &str = "cessio";
const NONCE: &str = "n-0S6_WzA2Mj";
const NOW: i64 = 2_000_000_000;

const ACCESS_TOKEN: &str = "access-token-of-this-login";

fn expected() -> Expected<'static> {
    Expected {
        issuer: ISSUER,
        client_id: CLIENT,
        nonce: NONCE,
        now: NOW,
        min_acr: AcrLevel::SpidL2,
        access_token: ACCESS_TOKEN,
    }
}

fn claims() -> Value {
    json!({
        "iss": ISSUER, "sub": "abc", "aud": CLIENT, "exp": NOW + 300, "iat": NOW, "nonce": NONCE,
        "acr": AcrLevel::SpidL2.uri(), "at_hash": at_hash(ACCESS_TOKEN),
    })
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

struct Fixture {
    signer: Es256Signer,
    jwks: Jwks,
}

fn fixture() -> Fixture {
    let signer = Es256Signer::generate();
    let jwks = Jwks::from_json(json!({ "keys": [signer.jwk()] }).to_string().as_bytes())
        .expect("own JWK parses");
    Fixture { signer, jwks }
}

fn verify(jwks: &Jwks, token: &str) -> Result<IdClaims, OidcError> {
    Unverified::parse(token)?.verify(jwks, &expected())
}

fn unsigned(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(signature)
    )
}

#[test]
fn es256_token_with_right_claims_verifies() {
    let f = fixture();
    let claims = verify(&f.jwks, &f.signer.sign(&claims())).expect("valid token");
    assert_eq!(claims.sub, "abc");
    assert_eq!(claims.level(), Some(AcrLevel::SpidL2));
}

#[test]
fn acr_lower_than_requested_refused() {
    let f = fixture();
    let token = f
        .signer
        .sign(&with(claims(), "acr", json!(AcrLevel::SpidL1.uri())));
    assert!(matches!(
        verify(&f.jwks, &token),
        Err(OidcError::AcrTooLow { requested: AcrLevel::SpidL2, returned: Some(acr) })
            if acr == AcrLevel::SpidL1.uri()
    ));
}

#[test]
fn acr_higher_than_requested_accepted() {
    let f = fixture();
    let token = f
        .signer
        .sign(&with(claims(), "acr", json!(AcrLevel::SpidL3.uri())));
    assert_eq!(
        verify(&f.jwks, &token).expect("valid").level(),
        Some(AcrLevel::SpidL3)
    );
}

#[test]
fn acr_missing_or_unknown_refused() {
    let f = fixture();
    let mut without = claims();
    without.as_object_mut().expect("object").remove("acr");
    for claims in [
        without,
        with(claims(), "acr", json!("https://www.spid.gov.it/SpidL9")),
    ] {
        assert!(matches!(
            verify(&f.jwks, &f.signer.sign(&claims)),
            Err(OidcError::AcrTooLow { .. })
        ));
    }
}

#[test]
fn at_hash_of_another_access_token_refused() {
    let f = fixture();
    let token = f
        .signer
        .sign(&with(claims(), "at_hash", json!(at_hash("altro"))));
    assert!(matches!(
        verify(&f.jwks, &token),
        Err(OidcError::AccessTokenMismatch)
    ));
}

#[test]
fn tampered_payload_fails_signature() {
    let f = fixture();
    let token = f.signer.sign(&claims());
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged = b64(with(claims(), "sub", json!("someone-else"))
        .to_string()
        .as_bytes());
    parts[1] = &forged;
    assert!(matches!(
        verify(&f.jwks, &parts.join(".")),
        Err(OidcError::BadSignature)
    ));
}

#[test]
fn flipped_signature_bit_fails() {
    let f = fixture();
    let token = f.signer.sign(&claims());
    let (input, signature) = token.rsplit_once('.').expect("three parts");
    let mut signature = URL_SAFE_NO_PAD.decode(signature).expect("base64");
    signature[10] ^= 1;
    let token = format!("{input}.{}", b64(&signature));
    assert!(matches!(
        verify(&f.jwks, &token),
        Err(OidcError::BadSignature)
    ));
}

#[test]
fn signature_from_another_key_with_same_kid_fails() {
    let f = fixture();
    let other = Es256Signer::generate();
    let token = other.sign_with_kid(&claims(), f.signer.kid());
    assert!(matches!(
        verify(&f.jwks, &token),
        Err(OidcError::BadSignature)
    ));
}

#[test]
fn alg_none_refused() {
    let f = fixture();
    let token = unsigned(&json!({ "alg": "none", "typ": "JWT" }), &claims(), b"");
    assert!(
        matches!(verify(&f.jwks, &token), Err(OidcError::UnsupportedAlgorithm(alg)) if alg == "none")
    );
}

#[test]
fn hs256_refused() {
    let f = fixture();
    let token = unsigned(
        &json!({ "alg": "HS256", "kid": f.signer.kid() }),
        &claims(),
        &[0; 32],
    );
    assert!(
        matches!(verify(&f.jwks, &token), Err(OidcError::UnsupportedAlgorithm(alg)) if alg == "HS256")
    );
}

#[test]
fn unknown_kid_reported_for_refetch() {
    let f = fixture();
    let token = f.signer.sign_with_kid(&claims(), "rotated-away");
    assert!(matches!(
        verify(&f.jwks, &token),
        Err(OidcError::UnknownKey { kid: Some(kid) }) if kid == "rotated-away"
    ));
}

#[test]
fn critical_header_extension_refused() {
    let f = fixture();
    let token = unsigned(
        &json!({ "alg": "ES256", "crit": ["exp"] }),
        &claims(),
        &[0; 64],
    );
    assert!(matches!(
        verify(&f.jwks, &token),
        Err(OidcError::MalformedToken(_))
    ));
}

#[test]
fn expired_beyond_leeway_refused() {
    let f = fixture();
    let token = f
        .signer
        .sign(&with(claims(), "exp", json!(NOW - LEEWAY_SECS)));
    assert!(matches!(
        verify(&f.jwks, &token),
        Err(OidcError::Expired { .. })
    ));
}

#[test]
fn expired_within_leeway_accepted() {
    let f = fixture();
    let token = f
        .signer
        .sign(&with(claims(), "exp", json!(NOW - LEEWAY_SECS + 1)));
    assert!(verify(&f.jwks, &token).is_ok());
}

#[test]
fn issued_in_future_refused() {
    let f = fixture();
    let token = f
        .signer
        .sign(&with(claims(), "iat", json!(NOW + LEEWAY_SECS + 1)));
    assert!(matches!(
        verify(&f.jwks, &token),
        Err(OidcError::IssuedInFuture { .. })
    ));
}

#[test]
fn wrong_issuer_refused() {
    let f = fixture();
    let token = f
        .signer
        .sign(&with(claims(), "iss", json!("https://evil.example")));
    assert!(matches!(
        verify(&f.jwks, &token),
        Err(OidcError::WrongIssuer)
    ));
}

#[test]
fn wrong_audience_refused() {
    let f = fixture();
    let token = f
        .signer
        .sign(&with(claims(), "aud", json!("another-client")));
    assert!(matches!(
        verify(&f.jwks, &token),
        Err(OidcError::WrongAudience)
    ));
}

#[test]
fn audience_list_needs_azp_naming_us() {
    let f = fixture();
    let many = with(claims(), "aud", json!([CLIENT, "another-client"]));
    let no_azp = f.signer.sign(&many);
    assert!(matches!(
        verify(&f.jwks, &no_azp),
        Err(OidcError::WrongAudience)
    ));
    let azp_other = f
        .signer
        .sign(&with(many.clone(), "azp", json!("another-client")));
    assert!(matches!(
        verify(&f.jwks, &azp_other),
        Err(OidcError::WrongAudience)
    ));
    let azp_us = f.signer.sign(&with(many, "azp", json!(CLIENT)));
    assert!(verify(&f.jwks, &azp_us).is_ok());
}

#[test]
fn wrong_nonce_refused() {
    let f = fixture();
    let token = f.signer.sign(&with(claims(), "nonce", json!("replayed")));
    assert!(matches!(
        verify(&f.jwks, &token),
        Err(OidcError::WrongNonce)
    ));
}

#[test]
fn missing_nonce_refused() {
    let f = fixture();
    let mut without = claims();
    without.as_object_mut().expect("object").remove("nonce");
    assert!(matches!(
        verify(&f.jwks, &f.signer.sign(&without)),
        Err(OidcError::WrongNonce)
    ));
}

#[test]
fn garbage_is_malformed_not_a_panic() {
    let f = fixture();
    for token in [
        "",
        "a.b",
        "a.b.c.d",
        "!!.!!.!!",
        "e30.e30.",
        &"a".repeat(MAX_TOKEN_LEN + 1),
    ] {
        assert!(verify(&f.jwks, token).is_err(), "{token:.20}");
    }
}

#[test]
fn jwks_skips_encryption_and_unknown_keys() {
    let f = fixture();
    let body = json!({ "keys": [
        { "kty": "RSA", "use": "enc", "n": RSA_TEST_N, "e": "AQAB" },
        { "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" },
        f.signer.jwk(),
    ]});
    let jwks = Jwks::from_json(body.to_string().as_bytes()).expect("one usable key");
    assert_eq!(jwks.keys.len(), 1);
    let only_enc =
        json!({ "keys": [{ "kty": "RSA", "use": "enc", "n": RSA_TEST_N, "e": "AQAB" }] });
    assert!(matches!(
        Jwks::from_json(only_enc.to_string().as_bytes()),
        Err(OidcError::Jwks(_))
    ));
}

/// Public half of a 2048-bit RSA test key. The private half signed [`RSA_TEST_TOKEN`] once
/// with `openssl dgst -sha256 -sign` and was then thrown away: verification needs no more,
/// and a private key in the source would only teach scanners to cry wolf.
const RSA_TEST_N: &str = "uIvLWEiLQam_n5VkLR11NkeEdJkE6TMYhxYgXanpmLXpX6LaAG2fhrECcWAAA6FSxs-UbcZb33hBauTTY1DfafXEKzOxfKioVkWPZEB41YlOGRMTwgLsJA5hIOuqQNwoOTfXzjH7rj89LrMnDib7i0Zk03_Ftn1Rwl00b8b0XDkwLTWH8ggkoNnrkyHIYO3wy-zVe2x5cAbRmt3aRH_qIn66i_aKMOfLx59jpMkz6XbHkYD9lfQvtYBmFx0kJ7EdiuAxEBjAbQI12bzpnYz4INn1javE8mb1r6v8mlhT307XtO-BzYiCwsfJx47j4jlTaXcnUKx_I8AAimOg0Ehnxw";
/// Claims: iss `https://gateway.example.it`, aud `cessio`, iat 2000000000, exp +600,
/// nonce `rsa-nonce`, fiscal number `TINIT-RSSMRA80A01H501U`; header kid `rsa-test`.
const RSA_TEST_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6InJzYS10ZXN0In0.eyJpc3MiOiJodHRwczovL2dhdGV3YXkuZXhhbXBsZS5pdCIsInN1YiI6InJzYS1zdWJqZWN0IiwiYXVkIjoiY2Vzc2lvIiwiZXhwIjoyMDAwMDAwNjAwLCJpYXQiOjIwMDAwMDAwMDAsIm5vbmNlIjoicnNhLW5vbmNlIiwiaHR0cHM6Ly9hdHRyaWJ1dGVzLmVpZC5nb3YuaXQvZmlzY2FsX251bWJlciI6IlRJTklULVJTU01SQTgwQTAxSDUwMVUifQ.UpU2cfeAnvnRp3EAoMoLhE23PtJTrHMbsKFLxIcnoYGnGJ4dSlfKSfSAwV4BlYKrzFTsGI8mYi-_I32ALK_Yfc7HuvSQ432h8UvwYiE05k1KHNfJvN2DGDeVWPLLkV10yVCrFNWjpmcAEqcpHPksZ4dOvxmQVGeHklqInvJTgsGMRPu9D9szocqW7LepHU940m9iQo23Y-7f_mM-OQIxSGfRoxmTm4o0uiCPrzWrpZT913Q99wJuXBoelCYbmikALaD_FDOofaSMhN9juPBBlmkUMal8Rnhdj5NQT1UFV5hsNbjHYTsbgLcuEaXS03MQ9J5TKpRXHmy3n-IKC_nriw";

fn rsa_jwks() -> Jwks {
    let body = json!({ "keys": [{ "kty": "RSA", "kid": "rsa-test", "alg": "RS256", "n": RSA_TEST_N, "e": "AQAB" }] });
    Jwks::from_json(body.to_string().as_bytes()).expect("RSA JWK parses")
}

#[test]
fn rs256_token_from_gateway_verifies() {
    let claims: Value = Unverified::parse(RSA_TEST_TOKEN)
        .and_then(|t| t.verified(&rsa_jwks()))
        .expect("RS256 token verifies");
    assert_eq!(claims["sub"], "rsa-subject");
}

#[test]
fn rs256_tampered_signature_fails() {
    let (input, signature) = RSA_TEST_TOKEN.rsplit_once('.').expect("three parts");
    let mut signature = URL_SAFE_NO_PAD.decode(signature).expect("base64");
    signature[100] ^= 0x80;
    let token = format!("{input}.{}", b64(&signature));
    let result = Unverified::parse(&token).and_then(|t| t.verified::<Value>(&rsa_jwks()));
    assert!(matches!(result, Err(OidcError::BadSignature)));
}

#[test]
fn rs256_key_not_used_for_es256_header() {
    // Algorithm confusion: a token claiming ES256 must not be checked against an RSA key.
    let token = unsigned(
        &json!({ "alg": "ES256", "kid": "rsa-test" }),
        &claims(),
        &[0; 64],
    );
    assert!(matches!(
        verify(&rsa_jwks(), &token),
        Err(OidcError::UnknownKey { .. })
    ));
}
