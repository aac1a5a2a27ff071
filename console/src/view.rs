//! What a page is made of: sections (tables, forms, capacity bars, text),
//! rendered by one askama layout (`templates/page.html`), so every page has
//! the same navigation, focus order and markup.

use askama::Template;
use askama_web::WebTemplate;

#[derive(Template, WebTemplate, Debug)]
#[template(path = "page.html")]
pub struct Page {
    pub title: String,
    pub nav: Option<Nav>,
    pub flashes: Vec<Flash>,
    pub sections: Vec<Section>,
}

#[derive(Template, WebTemplate, Debug)]
#[template(path = "login.html")]
pub struct Login {
    pub error: Option<String>,
    pub username: String,
    pub domain: String,
}

/// The async-job box; polls its own status while the job runs (htmx).
#[derive(Template, WebTemplate, Debug)]
#[template(path = "job.html")]
pub struct JobBox {
    pub jobid: String,
    pub what: String,
    pub done: bool,
    pub status: i64,
    pub status_text: String,
    pub class: &'static str,
    pub error: Option<String>,
    pub result: Vec<(String, String)>,
    pub next: Option<Link>,
}

#[derive(Debug, Clone)]
pub struct Nav {
    pub username: String,
    pub account: String,
    pub admin: bool,
    pub sessionkey: String,
    pub links: Vec<NavLink>,
}

#[derive(Debug, Clone)]
pub struct NavLink {
    pub label: &'static str,
    pub href: &'static str,
    pub current: bool,
}

#[derive(Debug, Clone)]
pub struct Link {
    pub label: String,
    pub href: String,
}

pub fn link(label: impl Into<String>, href: impl Into<String>) -> Link {
    Link {
        label: label.into(),
        href: href.into(),
    }
}

#[derive(Debug)]
pub struct Flash {
    pub kind: &'static str,
    pub text: String,
}

#[derive(Debug)]
pub enum Section {
    Heading(String),
    Text(String),
    Links(Vec<Link>),
    Pre(String),
    Kv(Vec<(String, String)>),
    Bars(Vec<Bar>),
    Table(Table),
    Form(Form),
    /// A rendered job box (its own template).
    Job(JobHtml),
    /// An SVG chart built by this crate (numbers only, escaped labels).
    Svg(String),
    /// A self-contained HTML document the API returned (the what-if report),
    /// shown in a sandboxed frame; the template escapes it into `srcdoc`.
    Frame {
        title: String,
        srcdoc: String,
    },
}

#[derive(Debug)]
pub struct JobHtml {
    pub html: String,
}

/// One capacity bar with its thresholds (percent).
#[derive(Debug)]
pub struct Bar {
    pub label: String,
    pub used: String,
    pub total: String,
    pub pct: u32,
    pub notify: Option<u32>,
    pub disable: Option<u32>,
    pub class: &'static str,
    pub note: String,
}

impl Bar {
    pub fn new(
        label: impl Into<String>,
        used: String,
        total: String,
        pct: f64,
        notify: Option<f64>,
        disable: Option<f64>,
    ) -> Bar {
        let to_pct = |f: f64| (f.clamp(0.0, 1.0) * 100.0).round() as u32;
        let pct_u = pct.clamp(0.0, 100.0).round() as u32;
        let class = match (notify.map(to_pct), disable.map(to_pct)) {
            (_, Some(d)) if pct_u >= d => "bad",
            (Some(n), _) if pct_u >= n => "warn",
            _ => "",
        };
        Bar {
            label: label.into(),
            used,
            total,
            pct: pct_u,
            notify: notify.map(to_pct),
            disable: disable.map(to_pct),
            class,
            note: String::new(),
        }
    }
}

#[derive(Debug, Default)]
pub struct Table {
    pub caption: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    pub empty: String,
    pub pager: Option<Pager>,
    pub filters: Vec<Field>,
    pub filter_action: String,
}

impl Table {
    pub fn new(caption: impl Into<String>, headers: &[&str]) -> Table {
        Table {
            caption: caption.into(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            empty: "Nothing to show.".into(),
            ..Table::default()
        }
    }
}

#[derive(Debug)]
pub struct Pager {
    pub page: usize,
    pub pages: usize,
    pub count: usize,
    pub prev: Option<String>,
    pub next: Option<String>,
}

#[derive(Debug)]
pub enum Cell {
    Text(String),
    Link(String, String),
    State(String, &'static str),
    Actions(Vec<Button>),
    Form(InlineForm),
}

pub fn text(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

/// A state badge coloured the way CloudStack's UI colours states.
pub fn state(s: &str) -> Cell {
    let class = match s {
        "Running" | "Up" | "Enabled" | "Ready" | "Allocated" | "Succeeded" | "Free" | "Implemented" | "Suitable" => {
            "good"
        }
        "Starting" | "Stopping" | "Migrating" | "PrepareForMaintenance" | "Connecting" | "Pending" | "Creating" => {
            "busy"
        }
        "Alert" | "Disconnected" | "Maintenance" | "Disabled" | "Stopped" | "Destroyed" | "Expunging" => "warn",
        "Down" | "Error" | "ErrorInPrepareForMaintenance" | "Failed" | "Unknown" | "Not suitable" | "none" => "bad",
        _ => "",
    };
    Cell::State(s.to_string(), class)
}

#[derive(Debug)]
pub struct Button {
    pub label: String,
    pub action: String,
    /// POST with these fields (the session key is added); else a link.
    pub post: bool,
    pub hidden: Vec<(String, String)>,
    pub class: &'static str,
}

/// A POST button carrying the session key (CloudStack's CSRF guard).
pub fn post_button(label: &str, action: String, sessionkey: &str, class: &'static str) -> Button {
    Button {
        label: label.into(),
        action,
        post: true,
        hidden: vec![("sessionkey".into(), sessionkey.into())],
        class,
    }
}

pub fn link_button(label: &str, href: String) -> Button {
    Button {
        label: label.into(),
        action: href,
        post: false,
        hidden: Vec::new(),
        class: "secondary",
    }
}

#[derive(Debug)]
pub struct InlineForm {
    pub id: String,
    pub action: String,
    pub hidden: Vec<(String, String)>,
    pub label: String,
    pub name: String,
    pub value: String,
    pub submit: String,
}

#[derive(Debug)]
pub struct Form {
    pub id: String,
    pub action: String,
    pub sessionkey: String,
    pub hidden: Vec<(String, String)>,
    pub groups: Vec<Group>,
    pub submit: String,
}

#[derive(Debug)]
pub struct Group {
    pub legend: String,
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub label: String,
    pub kind: FieldKind,
    pub value: String,
    pub required: bool,
    pub error: Option<String>,
    pub help: String,
}

#[derive(Debug, Clone)]
pub enum FieldKind {
    Text,
    Password,
    Checkbox,
    /// (value, label) pairs.
    Select(Vec<(String, String)>),
}

impl Field {
    pub fn text(name: &str, label: &str, required: bool) -> Field {
        Field {
            name: name.into(),
            label: label.into(),
            kind: FieldKind::Text,
            value: String::new(),
            required,
            error: None,
            help: String::new(),
        }
    }
    pub fn select(name: &str, label: &str, options: Vec<(String, String)>) -> Field {
        Field {
            kind: FieldKind::Select(options),
            required: true,
            ..Field::text(name, label, true)
        }
    }
    pub fn password(name: &str, label: &str) -> Field {
        Field {
            kind: FieldKind::Password,
            ..Field::text(name, label, true)
        }
    }
    pub fn value(mut self, v: impl Into<String>) -> Field {
        self.value = v.into();
        self
    }
    pub fn help(mut self, h: impl Into<String>) -> Field {
        self.help = h.into();
        self
    }
}
