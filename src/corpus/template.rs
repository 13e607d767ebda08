//! A record with holes: its compact JSON text, and where the fields that every
//! copy gets afresh (`eventID`, `eventTime`, `requestID`) go.

use serde_json::Value;

/// A field rewritten in every copy of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hole {
    EventId,
    EventTime,
    RequestId,
}

impl Hole {
    const ALL: [Hole; 3] = [Hole::EventId, Hole::EventTime, Hole::RequestId];

    fn field(self) -> &'static str {
        match self {
            Hole::EventId => "eventID",
            Hole::EventTime => "eventTime",
            Hole::RequestId => "requestID",
        }
    }

    /// A value no real record holds, found again in the serialised text.
    fn sentinel(self) -> &'static str {
        match self {
            Hole::EventId => "\u{1}tw-gen-event-id\u{1}",
            Hole::EventTime => "\u{1}tw-gen-event-time\u{1}",
            Hole::RequestId => "\u{1}tw-gen-request-id\u{1}",
        }
    }
}

/// A record ready to be copied.
#[derive(Debug, Clone)]
pub struct Template {
    text: String,
    /// Byte ranges of the holes' quoted values in `text`, in order.
    holes: Vec<(std::ops::Range<usize>, Hole)>,
}

/// The values one copy gets.
pub struct Fill<'a> {
    pub event_id: &'a str,
    pub event_time: &'a str,
    pub request_id: &'a str,
}

impl Template {
    /// Builds the template of a record (a JSON object). `eventID` and
    /// `eventTime` become holes whether or not the record had them;
    /// `requestID` only when it had one.
    pub fn new(mut record: Value) -> Result<Self, String> {
        let Some(object) = record.as_object_mut() else {
            return Err("a record must be a JSON object".into());
        };
        for hole in Hole::ALL {
            if hole != Hole::RequestId || object.contains_key(hole.field()) {
                object.insert(hole.field().into(), Value::String(hole.sentinel().into()));
            }
        }
        let text = serde_json::to_string(&record).map_err(|e| e.to_string())?;
        let mut holes = Vec::new();
        for hole in Hole::ALL {
            let quoted = serde_json::to_string(hole.sentinel()).map_err(|e| e.to_string())?;
            if let Some(at) = text.find(&quoted) {
                holes.push((at..at + quoted.len(), hole));
            }
        }
        holes.sort_by_key(|(range, _)| range.start);
        Ok(Template { text, holes })
    }

    /// The length of a copy, given the lengths of the values.
    pub fn len_with(&self, id: usize, time: usize, request: usize) -> usize {
        let mut len = self.text.len();
        for (range, hole) in &self.holes {
            len -= range.len();
            len += 2 + match hole {
                Hole::EventId => id,
                Hole::EventTime => time,
                Hole::RequestId => request,
            };
        }
        len
    }

    /// Appends a copy with `fill`'s values (plain ASCII, so not escaped).
    pub fn write(&self, fill: &Fill<'_>, out: &mut Vec<u8>) {
        let mut at = 0;
        for (range, hole) in &self.holes {
            out.extend_from_slice(&self.text.as_bytes()[at..range.start]);
            out.push(b'"');
            out.extend_from_slice(
                match hole {
                    Hole::EventId => fill.event_id,
                    Hole::EventTime => fill.event_time,
                    Hole::RequestId => fill.request_id,
                }
                .as_bytes(),
            );
            out.push(b'"');
            at = range.end;
        }
        out.extend_from_slice(&self.text.as_bytes()[at..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_carry_the_new_values_and_everything_else() {
        let record = serde_json::json!({
            "eventVersion": "1.08", "eventTime": "2020-01-01T00:00:00Z",
            "eventID": "old", "requestID": "r-old",
            "requestParameters": {"bucketName": "b", "x": [1, 2]}
        });
        let t = Template::new(record.clone()).expect("template");
        let mut out = Vec::new();
        let fill = Fill {
            event_id: "new-id",
            event_time: "2026-11-22T01:02:03Z",
            request_id: "req",
        };
        t.write(&fill, &mut out);
        assert_eq!(out.len(), t.len_with(6, 20, 3));
        let copy: Value = serde_json::from_slice(&out).expect("valid JSON");
        let mut expected = record;
        expected["eventID"] = "new-id".into();
        expected["eventTime"] = "2026-11-22T01:02:03Z".into();
        expected["requestID"] = "req".into();
        assert_eq!(copy, expected);
    }

    #[test]
    fn a_record_without_request_id_gets_none() {
        let t = Template::new(serde_json::json!({"eventName": "X"})).expect("template");
        let mut out = Vec::new();
        let fill = Fill {
            event_id: "i",
            event_time: "t",
            request_id: "r",
        };
        t.write(&fill, &mut out);
        let copy: Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(copy["eventID"], "i");
        assert!(copy.get("requestID").is_none());
        assert!(Template::new(serde_json::json!([1])).is_err());
    }
}
