//! The command table: every API command with its parameters (name, type,
//! required), whether it is async, who may call it, the fields its response
//! objects carry, and its handler. `listApis` is generated from this table and
//! parameters are validated against it before a handler runs, so the two
//! cannot drift.

use crate::api::Api;
use crate::caller::{Caller, Role};
use crate::errors::ApiError;
use crate::params::Params;
use crate::render::Obj;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

pub type Fut<'a> = Pin<Box<dyn Future<Output = Result<Obj, ApiError>> + Send + 'a>>;
pub type Handler = for<'a> fn(&'a Ctx<'a>) -> Fut<'a>;

/// Parameter types as listApis names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Uuid,
    Str,
    Long,
    Int,
    Bool,
    Map,
    List,
    Date,
}

impl Ty {
    pub fn name(self) -> &'static str {
        match self {
            Ty::Uuid => "uuid",
            Ty::Str => "string",
            Ty::Long => "long",
            Ty::Int => "integer",
            Ty::Bool => "boolean",
            Ty::Map => "map",
            Ty::List => "list",
            Ty::Date => "date",
        }
    }
}

#[derive(Debug)]
pub struct Param {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
    pub description: &'static str,
}

/// `p(name, type, description)` optional, `req(..)` required.
pub const fn p(name: &'static str, ty: Ty, description: &'static str) -> Param {
    Param {
        name,
        ty,
        required: false,
        description,
    }
}
pub const fn req(name: &'static str, ty: Ty, description: &'static str) -> Param {
    Param {
        name,
        ty,
        required: true,
        description,
    }
}

/// The paging and scoping parameters every list command takes.
pub const PAGING: [Param; 3] = [
    p("keyword", Ty::Str, "List by keyword"),
    p("page", Ty::Int, "Page number, from 1"),
    p("pagesize", Ty::Int, "Items per page (default 500)"),
];

pub struct Command {
    pub name: &'static str,
    pub description: &'static str,
    pub is_async: bool,
    /// The least role that may call it.
    pub min_role: Role,
    pub params: &'static [Param],
    /// Name of the response object (`virtualmachine`, `host`, ...).
    pub object: &'static str,
    /// Fields of the response object, for listApis.
    pub fields: &'static [&'static str],
    pub handler: Handler,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl Command {
    /// `deployvirtualmachineresponse`.
    pub fn response_name(&self) -> String {
        format!("{}response", self.name.to_ascii_lowercase())
    }

    /// Required parameters present and every given parameter of the right
    /// type, before the handler sees anything.
    pub fn check_params(&self, ps: &Params) -> Result<(), ApiError> {
        let lower = self.name.to_ascii_lowercase();
        for par in self
            .params
            .iter()
            .chain(PAGING.iter().filter(|_| self.name.starts_with("list")))
        {
            match par.ty {
                Ty::Map => {
                    if par.required && ps.map(par.name)?.is_empty() {
                        return Err(missing(&lower, par.name));
                    }
                }
                _ => match ps.opt_str(par.name) {
                    None if par.required => return Err(missing(&lower, par.name)),
                    None => {}
                    Some(v) => check_type(&lower, par, v)?,
                },
            }
        }
        Ok(())
    }
}

fn missing(cmd: &str, name: &str) -> ApiError {
    ApiError::param(format!(
        "Unable to execute API command {cmd} due to missing parameter {name}"
    ))
}

fn check_type(cmd: &str, par: &Param, v: &str) -> Result<(), ApiError> {
    let ok = match par.ty {
        Ty::Uuid => uuid::Uuid::parse_str(v).is_ok(),
        Ty::Long => v.trim().parse::<i64>().is_ok(),
        Ty::Int => v.trim().parse::<i32>().is_ok(),
        Ty::Bool => v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false"),
        Ty::Str | Ty::List | Ty::Map | Ty::Date => true,
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::param(format!(
            "Unable to execute API command {cmd} due to invalid value. Invalid parameter {} value={v} due to incorrect type: expected {}",
            par.name,
            par.ty.name()
        )))
    }
}

/// What a handler sees.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub api: &'a Api,
    pub caller: &'a Caller,
    pub p: &'a Params,
    pub cmd: &'static Command,
}

impl Ctx<'_> {
    pub fn lower(&self) -> String {
        self.cmd.name.to_ascii_lowercase()
    }
}

/// Every command, by name.
pub fn commands() -> &'static HashMap<&'static str, &'static Command> {
    static TABLE: OnceLock<HashMap<&'static str, &'static Command>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut m = HashMap::new();
        for group in crate::cmds::GROUPS {
            for c in group.iter() {
                let prev = m.insert(c.name, c);
                assert!(prev.is_none(), "command {} defined twice", c.name);
            }
        }
        m
    })
}

/// Boxes an async handler body: `handler!(|c| async move { ... })` is not
/// possible in a const table, so handlers are plain fns that call this.
pub fn boxed<'a, F>(f: F) -> Fut<'a>
where
    F: Future<Output = Result<Obj, ApiError>> + Send + 'a,
{
    Box::pin(f)
}
