//! [`Pages`]: a list route read page by page, following `next_cursor`.

use serde_json::{Map, Value};

use super::{protocol, read_json, Client, ClientError, PAGE_SIZE};

/// Pages of a list route, fetched one at a time as the iterator advances: at most one
/// page is held in memory. A failed request ends the iteration with its error.
pub struct Pages<'a, T> {
    client: &'a Client,
    url: String,
    field: &'static str,
    prefix: Option<String>,
    page_size: usize,
    cursor: Option<String>,
    buffered: std::vec::IntoIter<T>,
    finished: bool,
    parse: fn(Value) -> Result<T, String>,
}

impl<'a, T> Pages<'a, T> {
    pub(super) fn new(
        client: &'a Client,
        path: &str,
        field: &'static str,
        prefix: Option<&str>,
        page_size: Option<usize>,
        parse: fn(Value) -> Result<T, String>,
    ) -> Self {
        Pages {
            client,
            url: format!("{}{path}", client.root),
            field,
            prefix: prefix.filter(|p| !p.is_empty()).map(str::to_string),
            page_size: page_size.unwrap_or(PAGE_SIZE),
            cursor: None,
            buffered: Vec::new().into_iter(),
            finished: false,
            parse,
        }
    }

    fn fetch(&mut self) -> Result<(), ClientError> {
        let url = &self.url;
        let mut request = self
            .client
            .agent
            .get(url)
            .query("limit", self.page_size.to_string());
        if let Some(prefix) = &self.prefix {
            request = request.query("prefix", prefix);
        }
        if let Some(cursor) = &self.cursor {
            request = request.query("cursor", cursor);
        }
        let resp = self.client.send(url, request.call())?;
        let mut page: Map<String, Value> = read_json(url, resp)?;
        let Some(Value::Array(entries)) = page.remove(self.field) else {
            return Err(protocol(
                url,
                format!("no {:?} list in the page", self.field),
            ));
        };
        let next = match page.remove("next_cursor") {
            None | Some(Value::Null) => None,
            Some(Value::String(c)) => Some(c),
            Some(other) => return Err(protocol(url, format!("next_cursor is {other}"))),
        };
        let items = entries
            .into_iter()
            .map(self.parse)
            .collect::<Result<Vec<T>, String>>()
            .map_err(|reason| protocol(url, reason))?;
        if items.is_empty() && next.is_some() && next == self.cursor {
            return Err(protocol(url, "the cursor does not advance".into()));
        }
        self.finished = next.is_none();
        self.cursor = next;
        self.buffered = items.into_iter();
        Ok(())
    }
}

impl<T> Iterator for Pages<'_, T> {
    type Item = Result<T, ClientError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.buffered.next() {
                return Some(Ok(item));
            }
            if self.finished {
                return None;
            }
            if let Err(e) = self.fetch() {
                self.finished = true;
                return Some(Err(e));
            }
        }
    }
}
