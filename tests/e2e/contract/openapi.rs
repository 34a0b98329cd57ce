//! `openapi.yaml` as the contract test reads it: its operations, which of them a request
//! matches, and whether an answer is what a response object of it documents.

use heare_auth_tests::RawResponse;
use serde_json::Value;

/// The methods an OpenAPI path item can list.
pub const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE",
];

/// Schema keywords that constrain nothing here (`additionalProperties` is checked with
/// `properties`).
const NOT_RULES: [&str; 6] = [
    "additionalProperties",
    "description",
    "example",
    "examples",
    "format",
    "writeOnly",
];

/// Response headers that frame the message rather than say anything (`Content-Type` is checked
/// against the documented content instead).
const FRAMING: [&str; 3] = ["content-type", "content-length", "date"];

/// `openapi.yaml`, read.
pub struct Spec(pub Value);

/// One operation: a path template, a method, and their definitions.
#[derive(Clone, Copy)]
pub struct Operation<'s> {
    pub template: &'s str,
    pub method: &'static str,
    pub item: &'s Value,
    pub op: &'s Value,
}

/// What the spec says a request should get.
pub enum Expected<'s> {
    Operation(Operation<'s>),
    /// A listed path with a method it does not list.
    MethodNotAllowed(&'s Value),
    NotFound,
}

/// Where a request goes: the main listener as configured by default, the main listener with
/// the management API on (`MANAGEMENT_API=1`), or the `METRICS_ADDR` listener.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Main,
    Managed,
    Metrics,
}

impl Spec {
    pub fn load() -> Spec {
        let text = include_str!("../../../openapi.yaml");
        Spec(serde_norway::from_str(text).expect("openapi.yaml is YAML"))
    }

    /// `value`, following `$ref`s within the spec.
    pub fn resolve<'s>(&'s self, mut value: &'s Value) -> &'s Value {
        while let Some(target) = value.get("$ref").and_then(Value::as_str) {
            let pointer = target.strip_prefix('#').expect("local $ref");
            value = self
                .0
                .pointer(pointer)
                .unwrap_or_else(|| panic!("{target} is not in the spec"));
        }
        value
    }

    pub fn operations(&self) -> Vec<Operation<'_>> {
        let mut all = Vec::new();
        for (template, item) in self.0["paths"].as_object().unwrap() {
            for method in METHODS {
                if let Some(op) = item.get(method.to_ascii_lowercase()) {
                    all.push(Operation {
                        template,
                        method,
                        item,
                        op,
                    });
                }
            }
        }
        all
    }

    /// The path items served on `listener`: on the main listener every one but those that
    /// need a setting (`x-requires-setting`), which it serves only with that setting; on the
    /// metrics listener those whose `servers` name `METRICS_ADDR`.
    pub fn serves(&self, item: &Value, listener: Listener) -> bool {
        match listener {
            Listener::Main => !Spec::opt_in(item),
            Listener::Managed => true,
            Listener::Metrics => item["servers"].as_array().is_some_and(|servers| {
                servers.iter().any(|s| {
                    s["description"]
                        .as_str()
                        .is_some_and(|d| d.contains("METRICS_ADDR"))
                })
            }),
        }
    }

    /// Whether a path item is served only with `MANAGEMENT_API=1`.
    pub fn opt_in(item: &Value) -> bool {
        item["x-requires-setting"] == "MANAGEMENT_API=1"
    }

    /// Whether an operation must be asked with a bearer key (not merely may be).
    pub fn needs_bearer(operation: &Operation) -> bool {
        operation.op["security"].as_array().is_some_and(|schemes| {
            !schemes.is_empty()
                && schemes.iter().all(|s| {
                    s.get("bearer").is_some() && s.as_object().is_some_and(|o| o.len() == 1)
                })
        })
    }

    /// What `method path` should get on `listener`. A concrete path wins over a template.
    pub fn expect(&self, method: &str, path: &str, listener: Listener) -> Expected<'_> {
        let paths = self.0["paths"].as_object().unwrap();
        let mut items: Vec<(&String, &Value)> = paths
            .iter()
            .filter(|(template, item)| {
                self.serves(item, listener) && self.matches(template, item, path)
            })
            .collect();
        items.sort_by_key(|(template, _)| template.contains('{'));
        let Some(&(template, item)) = items.first() else {
            return Expected::NotFound;
        };
        match METHODS.iter().find(|m| **m == method) {
            Some(&method) if item.get(method.to_ascii_lowercase()).is_some() => {
                Expected::Operation(Operation {
                    template,
                    method,
                    item,
                    op: &item[method.to_ascii_lowercase()],
                })
            }
            _ => Expected::MethodNotAllowed(item),
        }
    }

    /// Whether `path` is an instance of `template`. A path parameter is one non-empty segment,
    /// or, marked `x-multi-segment`, all the rest of the path (none included).
    pub fn matches(&self, template: &str, item: &Value, path: &str) -> bool {
        let mut rest = path;
        for part in template.split('/').skip(1) {
            let Some(after) = rest.strip_prefix('/') else {
                return false;
            };
            let (segment, tail) = after.split_at(after.find('/').unwrap_or(after.len()));
            match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) if self.parameter(item, name)["x-multi-segment"] == true => return true,
                Some(_) if !segment.is_empty() => rest = tail,
                None if segment == part => rest = tail,
                _ => return false,
            }
        }
        rest.is_empty()
    }

    /// The path parameter `name` of a path item.
    pub fn parameter<'s>(&'s self, item: &'s Value, name: &str) -> &'s Value {
        item["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| self.resolve(p))
            .find(|p| p["name"] == name && p["in"] == "path")
            .unwrap_or_else(|| panic!("path parameter {name} is not defined"))
    }

    /// The parameters of an operation, its path item's included.
    pub fn parameters<'s>(&'s self, operation: &Operation<'s>) -> Vec<&'s Value> {
        [operation.item, operation.op]
            .iter()
            .flat_map(|v| v["parameters"].as_array().into_iter().flatten())
            .map(|p| self.resolve(p))
            .collect()
    }
}

/// The path of an operation with each path parameter set to its example (the parameter's, or
/// else the first of its schema's).
pub fn concrete_path(spec: &Spec, operation: &Operation) -> String {
    path_with(spec, operation, &[])
}

/// The path of an operation with the path parameters named in `values` set to those values
/// (percent-encoded), and every other to its example.
pub fn path_with(spec: &Spec, operation: &Operation, values: &[(String, String)]) -> String {
    let mut path = operation.template.to_string();
    for parameter in spec.parameters(operation) {
        if parameter["in"] == "path" {
            let name = parameter["name"].as_str().unwrap();
            let value = match values.iter().find(|(n, _)| n == name) {
                Some((_, value)) => percent_encode(value),
                None => parameter["example"]
                    .as_str()
                    .or_else(|| parameter["schema"]["examples"][0].as_str())
                    .expect("path example")
                    .to_string(),
            };
            path = path.replace(&format!("{{{name}}}"), &value);
        }
    }
    path
}

/// `text` percent-encoded but for the characters RFC 3986 leaves unreserved.
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Checks an answer against a response object of the spec: every required header present,
/// every header sent documented and valid, the content type documented, and a JSON body valid
/// against its schema; no body where the spec documents none.
pub fn conforms(spec: &Spec, response: &Value, answer: &RawResponse) -> Result<(), String> {
    let response = spec.resolve(response);
    let empty = serde_json::Map::new();
    let headers = response["headers"].as_object().unwrap_or(&empty);
    for (name, header) in headers {
        let header = spec.resolve(header);
        match answer.header(&name.to_ascii_lowercase()) {
            None if header["required"] == true => return Err(format!("no {name} header")),
            None => {}
            Some(value) => {
                let schema = &header["schema"];
                let value = match schema["type"].as_str() {
                    Some("integer") => value
                        .parse::<i64>()
                        .map(Value::from)
                        .map_err(|_| format!("{name}: {value:?} is not an integer"))?,
                    _ => Value::from(value),
                };
                validate(spec, schema, &value, name)?;
            }
        }
    }
    for (name, _) in &answer.headers {
        let documented = headers.keys().any(|h| h.eq_ignore_ascii_case(name));
        if !documented && !FRAMING.contains(&name.as_str()) {
            return Err(format!("the {name} header is not in the spec"));
        }
    }
    let Some(content) = response["content"].as_object() else {
        return match answer.body.is_empty() {
            true => Ok(()),
            false => Err(format!("a body where the spec has none: {}", answer.body)),
        };
    };
    let content_type = answer.header("content-type").ok_or("no Content-Type")?;
    let media = content
        .iter()
        .find(|(media, _)| media.eq_ignore_ascii_case(content_type))
        .map(|(_, media)| media)
        .ok_or_else(|| format!("Content-Type {content_type} is not in the spec"))?;
    if answer.body.is_empty() {
        return Ok(()); // a HEAD request's answer
    }
    if content_type == "application/json" {
        let body: Value = serde_json::from_str(&answer.body)
            .map_err(|e| format!("the body is not JSON ({e}): {}", answer.body))?;
        validate(spec, &media["schema"], &body, "body")?;
    }
    Ok(())
}

/// Checks `value` against a schema of the spec, for the keywords the spec uses. An object schema
/// that lists `properties` must list every property sent, unless `additionalProperties` says
/// otherwise: the server sends nothing the spec does not name.
fn validate(spec: &Spec, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let fail = |what: String| Err(format!("{at}: {what}, got {value}"));
    let Some(rules) = schema.as_object() else {
        return match schema {
            Value::Bool(true) => Ok(()),
            _ => fail(format!("a schema that is not an object: {schema}")),
        };
    };
    for (keyword, rule) in rules {
        match keyword.as_str() {
            "$ref" => validate(spec, spec.resolve(schema), value, at)?,
            "type" => {
                let types: Vec<&str> = match rule {
                    Value::Array(types) => types.iter().filter_map(Value::as_str).collect(),
                    other => vec![other.as_str().unwrap()],
                };
                if !types.iter().any(|t| is_type(value, t)) {
                    return fail(format!("expected {}", types.join(" or ")));
                }
            }
            "const" => {
                if value != rule {
                    return fail(format!("expected {rule}"));
                }
            }
            "enum" => {
                if !rule.as_array().unwrap().contains(value) {
                    return fail(format!("expected one of {rule}"));
                }
            }
            "required" => {
                for name in rule.as_array().unwrap() {
                    if value.is_object() && value.get(name.as_str().unwrap()).is_none() {
                        return fail(format!("no {name}"));
                    }
                }
            }
            "properties" => {
                let Some(object) = value.as_object() else {
                    continue;
                };
                let properties = rule.as_object().unwrap();
                for (name, v) in object {
                    let at = format!("{at}.{name}");
                    match (properties.get(name), rules.get("additionalProperties")) {
                        (Some(property), _) => validate(spec, property, v, &at)?,
                        (None, Some(extra)) => validate(spec, extra, v, &at)?,
                        (None, None) => return Err(format!("{at} is not in the spec")),
                    }
                }
            }
            "items" => {
                for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                    validate(spec, rule, item, &format!("{at}[{i}]"))?;
                }
            }
            "allOf" => {
                for part in rule.as_array().unwrap() {
                    validate(spec, part, value, at)?;
                }
            }
            "minimum" => {
                if value.as_f64().is_some_and(|v| v < rule.as_f64().unwrap()) {
                    return fail(format!("at least {rule}"));
                }
            }
            "maximum" => {
                if value.as_f64().is_some_and(|v| v > rule.as_f64().unwrap()) {
                    return fail(format!("at most {rule}"));
                }
            }
            "pattern" => {
                let pattern = regex::Regex::new(rule.as_str().unwrap()).unwrap();
                if value.as_str().is_some_and(|s| !pattern.is_match(s)) {
                    return fail(format!("a match of {rule}"));
                }
            }
            other if NOT_RULES.contains(&other) => {}
            other => return fail(format!("a keyword this test knows, not {other}")),
        }
    }
    Ok(())
}

fn is_type(value: &Value, name: &str) -> bool {
    match name {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "null" => value.is_null(),
        other => panic!("unknown type {other}"),
    }
}
