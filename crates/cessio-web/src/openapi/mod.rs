//! The OpenAPI 3.1 document of `/api/v1`. Its operations are one table kept next to the
//! router (`operations.rs`); every schema is derived from the Rust type the handler reads
//! or writes (schemars, JSON Schema 2020-12, which is OpenAPI 3.1's dialect), so the
//! document cannot describe a field the service does not send. Tests call every documented
//! operation to check that it is routed, check every route is documented, compare the
//! document with a reviewed snapshot, and CI validates it against the OpenAPI schema.

mod operations;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::marker::PhantomData;

use axum::Json;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::{Map, Value, json};

pub use operations::{LINKS, Link, OPERATIONS, Op, SchemaOf, of};

const REF_PREFIX: &str = "#/components/schemas/";

/// A list's body, one array of rows, named after its row (`MonitorRow` → `MonitorRows`).
#[derive(Debug)]
pub struct Rows<T>(PhantomData<T>);

impl<T: JsonSchema> JsonSchema for Rows<T> {
    fn schema_name() -> Cow<'static, str> {
        format!("{}s", T::schema_name()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "array", "items": generator.subschema_for::<T>() })
    }
}

/// What the document's schemas are generated with: JSON Schema 2020-12, definitions under
/// `components/schemas`. Requests are described as they are read (a field with a default
/// may be left out), responses as they are written.
fn generator(request: bool) -> SchemaGenerator {
    let settings = SchemaSettings::draft2020_12().with(|s| {
        s.definitions_path = "/components/schemas/".into();
        s.meta_schema = None;
    });
    if request {
        settings.for_deserialize().into_generator()
    } else {
        settings.for_serialize().into_generator()
    }
}

/// The name under `components/schemas` that a documented type has.
pub fn schema_name(of: SchemaOf) -> Option<String> {
    let schema = of(&mut generator(false)).to_value();
    schema["$ref"]
        .as_str()
        .map(|r| r.trim_start_matches(REF_PREFIX).to_string())
}

/// The query parameters an operation takes besides paging: each field of its query type,
/// with the field's schema (`null` dropped: a parameter left out is the absent value).
pub fn query_parameters(op: &Op) -> Vec<(String, bool, Value)> {
    let Some(query) = op.query else {
        return Vec::new();
    };
    let mut inline = SchemaSettings::draft2020_12()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .for_deserialize()
        .into_generator();
    let schema = query(&mut inline).to_value();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, schema)| {
            let mut schema = schema.clone();
            if let Some(m) = schema.as_object_mut() {
                if m.get("default") == Some(&Value::Null) {
                    m.remove("default");
                }
                if let Some(Value::Array(types)) = m.get_mut("type") {
                    types.retain(|t| t != "null");
                    if let [one] = types.as_slice() {
                        let one = one.clone();
                        m.insert("type".into(), one);
                    }
                }
                if let Some(Value::Array(values)) = m.get_mut("enum") {
                    values.retain(|v| !v.is_null());
                }
            }
            (name.clone(), required.contains(&name.as_str()), schema)
        })
        .collect()
}

/// Points every `$ref` to a renamed schema at its new name.
fn rename_refs(v: &mut Value, renamed: &BTreeMap<String, String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get_mut("$ref")
                && let Some(to) = renamed.get(r.trim_start_matches(REF_PREFIX))
            {
                *r = format!("{REF_PREFIX}{to}");
            }
            m.values_mut().for_each(|c| rename_refs(c, renamed));
        }
        Value::Array(items) => items.iter_mut().for_each(|c| rename_refs(c, renamed)),
        _ => {}
    }
}

/// The request side's schemas, renamed where a type is read differently from how it is
/// written (a field with a default may be left out of a request, but is always in a
/// response): `RentMonth` as read becomes `RentMonthInput`. Renaming one can make another
/// that refers to it differ, so this goes on until nothing more differs.
fn input_names(
    responses: &Map<String, Value>,
    requests: &Map<String, Value>,
) -> BTreeMap<String, String> {
    let mut renamed = BTreeMap::new();
    loop {
        let mut more = false;
        for (name, schema) in requests {
            if renamed.contains_key(name) {
                continue;
            }
            let mut schema = schema.clone();
            rename_refs(&mut schema, &renamed);
            if responses.get(name).is_some_and(|known| known != &schema) {
                renamed.insert(name.clone(), format!("{name}Input"));
                more = true;
            }
        }
        if !more {
            return renamed;
        }
    }
}

fn parameters(o: &Op) -> Vec<Value> {
    let mut parameters: Vec<Value> = Vec::new();
    for name in o
        .path
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
    {
        parameters.push(
            json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }),
        );
    }
    for (name, required, schema) in query_parameters(o) {
        let mut parameter =
            json!({ "name": name, "in": "query", "required": required, "schema": schema });
        if let Some(description) = parameter["schema"]
            .as_object_mut()
            .and_then(|s| s.remove("description"))
        {
            parameter["description"] = description;
        }
        parameters.push(parameter);
    }
    if o.paged {
        parameters.push(json!({
            "name": "limit", "in": "query", "required": false,
            "description": "Righe per pagina",
            "schema": { "type": "integer", "minimum": 1, "maximum": cessio_app::PAGE_MAX, "default": cessio_app::PAGE_DEFAULT }
        }));
        parameters.push(json!({
            "name": "cursor", "in": "query", "required": false,
            "description": "Opaco: dall'intestazione Link della pagina precedente, con gli stessi filtri (altrimenti 422 cursor_filters_changed)",
            "schema": { "type": "string" }
        }));
    }
    if o.idempotent {
        parameters.push(json!({
            "name": "Idempotency-Key", "in": "header", "required": true,
            "description": "Stessa chiave e stesso corpo: stessa risposta; corpo diverso: 422 idempotency_mismatch",
            "schema": { "type": "string", "maxLength": 100 }
        }));
    }
    parameters
}

fn success(o: &Op, responses: &mut SchemaGenerator) -> Value {
    if o.path.ends_with(".pdf") {
        return json!({ "description": "PDF", "content": { "application/pdf": { "schema": { "type": "string", "format": "binary" } } } });
    }
    if o.path.ends_with(".csv") {
        return json!({ "description": "CSV (UTF-8 con BOM, separatore ;)", "content": { "text/csv": { "schema": { "type": "string" } } } });
    }
    match o.response {
        Some(of) => {
            json!({ "description": "OK", "content": { "application/json": { "schema": of(responses).to_value() } } })
        }
        // The document's own schema is the OpenAPI specification's.
        None if o.id == "openapi" => {
            json!({ "description": "OpenAPI", "content": { "application/json": { "schema": { "type": "object", "additionalProperties": true } } } })
        }
        None => json!({ "description": "OK" }),
    }
}

fn links(o: &Op) -> Map<String, Value> {
    LINKS
        .iter()
        .filter(|l| l.from == o.id)
        .map(|l| {
            let parameters: Map<String, Value> = l
                .parameters
                .iter()
                .map(|(name, expr)| ((*name).to_string(), json!(expr)))
                .collect();
            (
                l.name.to_string(),
                json!({ "operationId": l.to, "parameters": parameters }),
            )
        })
        .collect()
}

fn operation(o: &Op, requests: &mut SchemaGenerator, responses: &mut SchemaGenerator) -> Value {
    let status = o.status.to_string();
    let mut operation = json!({
        "operationId": o.id,
        "summary": o.summary,
        "parameters": parameters(o),
        "responses": {
            "default": {
                "description": "Rifiuto o errore (RFC 9457)",
                "content": { "application/problem+json": { "schema": of::<crate::Problem>(responses).to_value() } }
            }
        }
    });
    operation["responses"][&status] = success(o, responses);
    if let Some(job) = o.accepted {
        operation["responses"]["202"] = json!({
            "description": "Il lavoro non è finito nell'attesa: prosegue da sé, da seguire all'indirizzo in Location",
            "headers": { "Location": { "schema": { "type": "string" } } },
            "content": { "application/json": { "schema": job(responses).to_value() } }
        });
    }
    let links = links(o);
    if !links.is_empty() {
        operation["responses"][&status]["links"] = Value::Object(links);
    }
    if o.paged {
        operation["responses"][&status]["headers"] = json!({
            "Link": {
                "description": "La pagina seguente, quando c'è: <URL>; rel=\"next\" (RFC 8288)",
                "schema": { "type": "string" }
            }
        });
    }
    if o.id == "importCommunications" || o.id == "submitImportJob" {
        operation["requestBody"] = json!({
            "required": true,
            "content": { "text/csv": { "schema": { "type": "string" } } }
        });
    }
    if let Some(request) = o.request {
        operation["requestBody"] = json!({
            "required": true,
            "content": { "application/json": { "schema": request(requests).to_value() } }
        });
    }
    operation
}

pub fn build() -> Value {
    let mut requests = generator(true);
    let mut responses = generator(false);
    let mut paths = Map::new();
    for o in OPERATIONS {
        let entry = paths.entry(o.path.to_string()).or_insert_with(|| json!({}));
        entry[o.method] = operation(o, &mut requests, &mut responses);
    }
    let mut schemas = responses.take_definitions(true);
    let requested = requests.take_definitions(true);
    let renamed = input_names(&schemas, &requested);
    for (name, mut schema) in requested {
        rename_refs(&mut schema, &renamed);
        schemas.insert(renamed.get(&name).unwrap_or(&name).clone(), schema);
    }
    for operation in paths.values_mut().filter_map(Value::as_object_mut) {
        for op in operation.values_mut() {
            if let Some(body) = op.get_mut("requestBody") {
                rename_refs(body, &renamed);
            }
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Cessio — Piattaforma cessione crediti",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Registro dei crediti d'imposta cedibili. Importi in centesimi; date Europe/Rome. Errori come application/problem+json con un codice stabile e la regola che ha rifiutato."
        },
        "servers": [{ "url": "/api/v1" }],
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer" },
                "session": { "type": "apiKey", "in": "cookie", "name": "cessio_session" }
            }
        },
        "security": [{ "bearer": [] }, { "session": [] }],
        "paths": paths
    })
}

pub async fn document() -> Json<Value> {
    Json(build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(v: &Value, found: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    found.push(r.clone());
                }
                m.values().for_each(|c| refs(c, found));
            }
            Value::Array(items) => items.iter().for_each(|c| refs(c, found)),
            _ => {}
        }
    }

    /// Every `$ref` of the document names a schema it holds, and no type's name was taken
    /// twice (schemars would number the second one).
    #[test]
    fn every_reference_resolves_to_a_named_schema() {
        let doc = build();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.len() > 100, "{}", found.len());
        for r in found {
            let name = r.trim_start_matches("#/components/schemas/");
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "{r} is not in components/schemas"
            );
        }
        let schemas = doc["components"]["schemas"].as_object();
        let numbered: Vec<&String> = schemas
            .into_iter()
            .flat_map(|m| m.keys())
            .filter(|k| k.ends_with(|c: char| c.is_ascii_digit()))
            .collect();
        assert!(numbered.is_empty(), "two types share a name: {numbered:?}");
    }
}
