//! listApis, generated from the command table: the same parameters the
//! pipeline checks and the response fields the commands declare, so Marvin's
//! codegenerator can build its bindings from a live server.

use super::prelude::*;
use crate::registry::{Command as Cmd, commands};

/// CloudStack release that introduced a command, where it is later than 4.0.
fn since(name: &str) -> &'static str {
    match name {
        "getUserKeys" => "4.10.0",
        "listResourceDetails" => "4.2.0",
        "listAffinityGroups" => "4.2.0",
        _ => "4.0.0",
    }
}

/// The type listApis gives a response field. The command table names fields
/// only, so the type follows CloudStack's naming habits.
fn field_type(object: &str, name: &str) -> &'static str {
    match name {
        // An alert's type is its number; everywhere else `type` is a word.
        "type" if object == "alert" => "integer",
        "type" => "string",
        "jobstatus" | "jobresultcode" | "jobprocstatus" | "accounttype" => "integer",
        "nic" | "tags" | "user" | "securitygroup" | "affinitygroup" | "service" | "capacity" | "params"
        | "response" | "provider" => "list",
        "jobresult" | "userkeys" => "responseobject",
        "created" | "sent" | "completed" | "allocated" | "removed" | "lastpinged" => "date",
        "count"
        | "size"
        | "physicalsize"
        | "memory"
        | "cpunumber"
        | "cpuspeed"
        | "cpusockets"
        | "deviceid"
        | "level"
        | "disksize"
        | "memorytotal"
        | "memoryallocated"
        | "memoryused"
        | "disksizetotal"
        | "disksizeallocated"
        | "disksizeused"
        | "capacitytotal"
        | "capacityused"
        | "capacityallocated"
        | "maxguestslimit"
        | "maxdatavolumeslimit"
        | "maxhostspercluster"
        | "rootdeviceid"
        | "receivedbytes"
        | "sentbytes" => "long",
        n if n.ends_with("total") || n == "vmrunning" || n == "vmstopped" => "long",
        n if n.starts_with("is")
            || n.starts_with("has")
            || n.ends_with("enabled")
            || matches!(
                n,
                "success"
                    | "destroyed"
                    | "revertable"
                    | "forvirtualnetwork"
                    | "fordisplay"
                    | "bootable"
                    | "crossZones"
                    | "offerha"
                    | "limitcpuuse"
                    | "defaultuse"
                    | "canusefordeploy"
                    | "restartrequired"
                    | "specifyvlan"
                    | "specifyipranges"
                    | "conservemode"
                    | "forvpc"
                    | "egressdefaultpolicy"
                    | "displayoffering"
                    | "haenable"
                    | "passwordenabled"
            ) =>
        {
            "boolean"
        }
        _ => "string",
    }
}

fn param_obj(par: &crate::registry::Param) -> Obj {
    Obj::new()
        .s("name", par.name)
        .s("description", par.description)
        .s("type", par.ty.name())
        .b("required", par.required)
        .i("length", 255)
}

fn api_obj(cmd: &Cmd, all: &[&'static Cmd]) -> Obj {
    let mut params: Vec<Obj> = cmd.params.iter().map(param_obj).collect();
    if cmd.name.starts_with("list") {
        for par in PAGING.iter().filter(|x| !cmd.params.iter().any(|y| y.name == x.name)) {
            params.push(param_obj(par));
        }
    }
    let field = |name: &str, description: String| {
        Obj::new()
            .s("name", name.to_string())
            .s("description", description)
            .s("type", field_type(cmd.object, name))
    };
    let mut response: Vec<Obj> = cmd
        .fields
        .iter()
        .map(|f| field(f, format!("the {f} of the {}", cmd.object)))
        .collect();
    // BaseResponse: the latest async job on the object.
    for (f, d) in [
        ("jobid", "the ID of the latest async job acting on this object"),
        (
            "jobstatus",
            "the current status of the latest async job acting on this object",
        ),
    ] {
        if !cmd.fields.contains(&f) {
            response.push(field(f, d.to_string()));
        }
    }
    // Commands answering the same kind of object, as CloudStack's `related`.
    let related: Vec<&str> = all
        .iter()
        .filter(|o| o.object == cmd.object && o.name != cmd.name && cmd.object != "success")
        .map(|o| o.name)
        .collect();
    Obj::new()
        .s("name", cmd.name)
        .s("description", cmd.description)
        .b("isasync", cmd.is_async)
        .s("since", since(cmd.name))
        .s("type", cmd.object)
        .s("related", related.join(","))
        .list("params", params)
        .list("response", response)
}

fn list_apis<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let mut all: Vec<&'static Cmd> = commands()
            .values()
            .copied()
            .filter(|cmd| c.caller.role >= cmd.min_role)
            .collect();
        all.sort_by_key(|cmd| cmd.name);
        let chosen: Vec<&Cmd> = match c.p.opt_str("name").filter(|n| !n.is_empty()) {
            None => all.clone(),
            Some(n) => {
                let one: Vec<&Cmd> = all.iter().copied().filter(|cmd| cmd.name == n).collect();
                if one.is_empty() {
                    return Err(ApiError::param(
                        "Api Discovery plugin was unable to find an api by that name or process any apis",
                    ));
                }
                one
            }
        };
        let items: Vec<Obj> = chosen.into_iter().map(|cmd| api_obj(cmd, &all)).collect();
        Ok(render::list_body("api", items.len(), items))
    })
}

pub static COMMANDS: &[Command] = &[Command {
    name: "listApis",
    description: "lists all available apis on the server, provided by the Api Discovery plugin",
    is_async: false,
    min_role: Role::User,
    params: &[p("name", Ty::Str, "API name")],
    object: "api",
    fields: &[
        "name",
        "description",
        "isasync",
        "since",
        "type",
        "related",
        "params",
        "response",
    ],
    handler: list_apis,
}];
