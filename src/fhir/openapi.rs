//! An OpenAPI 3 description of the FHIR API, made from the CapabilityStatement (and
//! so from the same registry of types, parameters and operations): what a client
//! generator or an API gateway needs, with FHIR's own semantics left to FHIR.

use serde_json::{Map, Value, json};

/// Parameters every search takes, beyond its type's own.
const SEARCH_CONTROLS: [(&str, &str); 8] = [
    ("_count", "Page size (0: the total only)"),
    ("_sort", "date, -date, _lastUpdated or -_lastUpdated"),
    ("_summary", "true, text, data, count or false"),
    ("_elements", "Top-level elements to return, comma separated"),
    (
        "_total",
        "none, estimate or accurate (the count of what is released)",
    ),
    ("_include", "Type:parameter[:Target] (with :iterate)"),
    ("_revinclude", "Type:parameter[:Target] (with :iterate)"),
    ("_format", "json or xml (else the Accept header)"),
];

pub fn openapi(capability_statement: &Value, base: &str) -> Value {
    let mut paths = Map::new();
    for resource in capability_statement["rest"][0]["resource"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let Some(type_name) = resource["type"].as_str() else {
            continue;
        };
        let interactions: Vec<&str> = resource["interaction"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["code"].as_str())
            .collect();
        let mut parameters: Vec<Value> = resource["searchParam"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                query_parameter(
                    p["name"].as_str().unwrap_or_default(),
                    p["documentation"]
                        .as_str()
                        .unwrap_or(p["type"].as_str().unwrap_or_default()),
                )
            })
            .collect();
        parameters.extend(
            SEARCH_CONTROLS
                .iter()
                .map(|(name, doc)| query_parameter(name, doc)),
        );
        let mut type_path = Map::new();
        if interactions.contains(&"search-type") {
            type_path.insert(
                "get".into(),
                operation(
                    &format!("search{type_name}"),
                    &format!("Search {type_name}"),
                    type_name,
                    parameters.clone(),
                    "A searchset Bundle",
                ),
            );
            paths.insert(
                format!("/{type_name}/_search"),
                json!({"post": {
                    "operationId": format!("search{type_name}Post"),
                    "summary": format!("Search {type_name} with the parameters in a form body"),
                    "tags": [type_name],
                    "requestBody": {"required": true, "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object", "additionalProperties": {"type": "string"}}}}},
                    "responses": responses("A searchset Bundle"),
                }}),
            );
        }
        if interactions.contains(&"create") {
            type_path.insert(
                "post".into(),
                write(&format!("create{type_name}"), type_name, "201"),
            );
        }
        if !type_path.is_empty() {
            paths.insert(format!("/{type_name}"), Value::Object(type_path));
        }
        let mut instance = Map::new();
        if interactions.contains(&"read") {
            instance.insert(
                "get".into(),
                operation(
                    &format!("read{type_name}"),
                    &format!("Read one {type_name}"),
                    type_name,
                    vec![
                        id_parameter(),
                        query_parameter("_summary", "true, text, data or false"),
                        query_parameter("_elements", "Top-level elements to return"),
                    ],
                    &format!("The {type_name} (ETag and Last-Modified where its version is known)"),
                ),
            );
        }
        if interactions.contains(&"update") {
            let mut update = write(&format!("update{type_name}"), type_name, "200");
            update["parameters"] = json!([id_parameter(), {"name": "If-Match", "in": "header", "required": false, "schema": {"type": "string"}, "description": "W/\"{version}\": the version being changed (412 if it is no longer the current one)"}]);
            instance.insert("put".into(), update);
        }
        if !instance.is_empty() {
            paths.insert(format!("/{type_name}/{{id}}"), Value::Object(instance));
        }
        if interactions.contains(&"history-instance") {
            paths.insert(
                format!("/{type_name}/{{id}}/_history"),
                json!({"get": operation(&format!("history{type_name}"), "Every version, newest first", type_name, vec![id_parameter()], "A history Bundle")}),
            );
        }
        if interactions.contains(&"vread") {
            paths.insert(
                format!("/{type_name}/{{id}}/_history/{{version}}"),
                json!({"get": operation(&format!("vread{type_name}"), "One version", type_name,
                    vec![id_parameter(), json!({"name": "version", "in": "path", "required": true, "schema": {"type": "string"}})],
                    &format!("The {type_name} as it was"))}),
            );
        }
        for op in resource["operation"].as_array().into_iter().flatten() {
            let name = op["name"].as_str().unwrap_or_default();
            paths.insert(
                format!("/{type_name}/{{id}}/${name}"),
                json!({"get": operation(&format!("{name}{type_name}"), op["documentation"].as_str().unwrap_or(name), type_name, vec![id_parameter()], "The operation's result")}),
            );
        }
    }
    // The Patient compartment: every clinical type under its patient.
    paths.insert(
        "/Patient/{id}/{type}".into(),
        json!({"get": operation("searchPatientCompartment", "A search of one clinical type for the patient, as {type}?patient=Patient/{id}", "Patient",
            vec![id_parameter(), json!({"name": "type", "in": "path", "required": true, "schema": {"type": "string"}})],
            "A searchset Bundle")}),
    );
    paths.insert(
        "/metadata".into(),
        json!({"get": {"operationId": "capabilities", "summary": "The CapabilityStatement", "tags": ["metadata"], "security": [], "responses": responses("The CapabilityStatement")}}),
    );
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Shared Care Record FHIR R4 facade",
            "version": capability_statement["software"]["version"],
            "description": "FHIR R4 (application/fhir+json or +xml). Every request needs a bearer token (SMART on FHIR / CIS2); see /.well-known/smart-configuration. Resources are FHIR R4 as published at hl7.org/fhir/R4; errors are OperationOutcomes."
        },
        "servers": [{"url": base}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {
                "Resource": {"type": "object", "required": ["resourceType"], "properties": {"resourceType": {"type": "string"}, "id": {"type": "string"}}, "additionalProperties": true},
                "OperationOutcome": {"type": "object", "required": ["resourceType", "issue"], "properties": {"resourceType": {"type": "string", "enum": ["OperationOutcome"]}, "issue": {"type": "array", "items": {"type": "object"}}}}
            }
        },
        "paths": paths,
    })
}

fn query_parameter(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "schema": {"type": "string"}, "description": description})
}

fn id_parameter() -> Value {
    json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}})
}

fn responses(success: &str) -> Value {
    let fhir = json!({"application/fhir+json": {"schema": {"$ref": "#/components/schemas/Resource"}}, "application/fhir+xml": {}});
    let outcome = json!({"application/fhir+json": {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}});
    json!({
        "200": {"description": success, "content": fhir},
        "400": {"description": "Bad request (a parameter the facade cannot honour, or an invalid value)", "content": outcome},
        "401": {"description": "No valid bearer token", "content": outcome},
        "403": {"description": "Not permitted, or the patient has objected to sharing", "content": outcome},
        "404": {"description": "Not known", "content": outcome},
        "503": {"description": "A partner, the database or the audit trail is unavailable", "content": outcome}
    })
}

fn operation(id: &str, summary: &str, tag: &str, parameters: Vec<Value>, success: &str) -> Value {
    json!({"operationId": id, "summary": summary, "tags": [tag], "parameters": parameters, "responses": responses(success)})
}

fn write(id: &str, tag: &str, status: &str) -> Value {
    let mut responses = responses("The resource as recorded");
    if status == "201" {
        let created = responses["200"].take();
        responses.as_object_mut().map(|r| r.remove("200"));
        responses["201"] = created;
    }
    responses["412"] = json!({"description": "If-Match named a version that is no longer current"});
    json!({
        "operationId": id,
        "tags": [tag],
        "requestBody": {"required": true, "content": {"application/fhir+json": {"schema": {"$ref": "#/components/schemas/Resource"}}, "application/fhir+xml": {}}},
        "responses": responses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_interaction_has_a_path() {
        let cs = crate::fhir::capability::capability_statement(
            "http://127.0.0.1:8080/fhir",
            "2026-01-01",
        );
        let api = openapi(&cs, "http://127.0.0.1:8080/fhir");
        let paths = api["paths"].as_object().unwrap();
        for t in crate::fhir::ResourceType::all() {
            assert!(paths[&format!("/{t}")]["get"].is_object(), "{t} search");
            assert!(
                paths[&format!("/{t}/{{id}}")]["get"].is_object(),
                "{t} read"
            );
        }
        assert!(paths["/Consent/{id}"]["put"].is_object());
        assert!(paths["/Consent"]["post"]["responses"]["201"].is_object());
        assert!(paths["/AuditEvent/{id}"]["get"].is_object());
        assert!(paths["/Patient/{id}/$everything"]["get"].is_object());
        let observation = paths["/Observation"]["get"]["parameters"]
            .as_array()
            .unwrap();
        assert!(observation.iter().any(|p| p["name"] == "value-quantity"));
        assert!(observation.iter().any(|p| p["name"] == "_summary"));
    }
}
