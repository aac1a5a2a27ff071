//! Closed vocabularies of the controller: API commands (job and saga kinds) and
//! event-log kinds. Behaviour branches on these enums, never on their text; the
//! text is what logs, reports and the API show (CloudStack's command names).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
            pub fn parse(s: &str) -> Option<$name> {
                match s { $($text => Some($name::$variant),)* _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let s = String::deserialize(d)?;
                $name::parse(&s).ok_or_else(|| {
                    serde::de::Error::custom(format!("unknown {} `{s}`", stringify!($name)))
                })
            }
        }
    };
}

named_enum! {
    /// The API command a job runs (CloudStack's names).
    Command {
        DeployVirtualMachine => "deployVirtualMachine",
        StartVirtualMachine => "startVirtualMachine",
        StopVirtualMachine => "stopVirtualMachine",
        RebootVirtualMachine => "rebootVirtualMachine",
        DestroyVirtualMachine => "destroyVirtualMachine",
        RecoverVirtualMachine => "recoverVirtualMachine",
        ExpungeVirtualMachine => "expungeVirtualMachine",
        MigrateVirtualMachine => "migrateVirtualMachine",
        ChangeServiceForVirtualMachine => "changeServiceForVirtualMachine",
        HaRestartVirtualMachine => "haRestartVirtualMachine",
        CreateVolume => "createVolume",
        AttachVolume => "attachVolume",
        DetachVolume => "detachVolume",
        DeleteVolume => "deleteVolume",
        CreateSnapshot => "createSnapshot",
        DeleteSnapshot => "deleteSnapshot",
        AssociateIpAddress => "associateIpAddress",
        DisassociateIpAddress => "disassociateIpAddress",
        PrepareHostForMaintenance => "prepareHostForMaintenance",
        CancelHostMaintenance => "cancelHostMaintenance",
        RunWhatIf => "runWhatIf",
    }
}

named_enum! {
    /// Kinds of event-log lines.
    EventKind {
        Alert => "alert",
        Call => "call",
        Evidence => "evidence",
        HaBlocked => "ha.blocked",
        HaGaveUp => "ha.gaveup",
        HaRecovered => "ha.recovered",
        HaRetry => "ha.retry",
        HaScheduled => "ha.scheduled",
        HaSkip => "ha.skip",
        HostFenced => "host.fenced",
        HostResourceState => "host.resourcestate",
        HostState => "host.state",
        JobDone => "job.done",
        JobFail => "job.fail",
        JobSubmit => "job.submit",
        MaintenanceHook => "maintenance.hook",
        MaintenancePlan => "maintenance.plan",
        MaintenanceRolling => "maintenance.rolling",
        Restart => "restart",
        Recovered => "recovered",
        Result => "result",
        Timeout => "timeout",
        Tolerated => "tolerated",
        Undo => "undo",
        UndoFailed => "undo.failed",
        UndoRetry => "undo.retry",
        Leftover => "leftover",
        LeftoverCleaned => "leftover.cleaned",
        VmAdopted => "vm.adopted",
        VmStopped => "vm.stopped",
        VmStray => "vm.stray",
        VmUnknown => "vm.unknown",
        Input => "input",
        Panic => "panic",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Command::ALL {
            assert_eq!(Command::parse(c.as_str()), Some(*c));
            let j = serde_json::to_string(c).unwrap();
            assert_eq!(serde_json::from_str::<Command>(&j).unwrap(), *c);
        }
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(*k));
        }
        assert!(serde_json::from_str::<Command>("\"launchMissiles\"").is_err());
    }
}
