//! The patient and the directory records of a structured record, STU3 to R4.

use serde_json::{Map, Value};

use super::rename;

pub fn patient(record: &mut Map<String, Value>) {
    // Not in R4 (and never about a person).
    record.remove("animal");
}

pub fn medication(record: &mut Map<String, Value>) {
    for gone in ["isBrand", "isOverTheCounter", "package", "image"] {
        record.remove(gone);
    }
    if let Some(Value::Array(ingredients)) = record.get_mut("ingredient") {
        for ingredient in ingredients.iter_mut().filter_map(Value::as_object_mut) {
            rename(ingredient, "amount", "strength");
        }
    }
}
