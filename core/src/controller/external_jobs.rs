//! Jobs that run outside the controller (`runWhatIf`: an analysis on a copy
//! of the cloud) kept in the same job table as every async job: started
//! Pending, ended with their result or error by admin changes (journaled),
//! and failed by a restart, which the work they stood for did not survive.

use super::admin::Created;
use super::directory::UserId;
use super::*;
use crate::error::CoreResult;

impl Controller {
    pub(crate) fn begin_external_job(&mut self, command: Command, by: Option<UserId>) -> Created {
        let id = JobId(self.cloud.new_uuid());
        self.push_job(Job {
            id,
            command,
            vm: None,
            volume: None,
            status: JobStatus::Pending,
            error: None,
            error_code: None,
            created: self.now,
            completed: None,
            user: by,
            instance: None,
            result: None,
        });
        Created {
            id: id.0,
            job: Some(id),
        }
    }

    pub(crate) fn end_external_job(&mut self, job: JobId, outcome: Result<String, String>) -> CoreResult<Created> {
        let now = self.now;
        let j = self
            .job_mut(job)
            .filter(|j| j.status == JobStatus::Pending && j.saga_free())
            .ok_or_else(|| CoreError::NotFound {
                kind: "pending job",
                id: job.0.to_string(),
            })?;
        j.completed = Some(now);
        match outcome {
            Ok(result) => {
                j.status = JobStatus::Succeeded;
                j.result = Some(result);
            }
            Err(e) => {
                j.status = JobStatus::Failed;
                j.error_code = Some(530);
                j.error = Some(e);
            }
        }
        Ok(Created { id: job.0, job: None })
    }

    /// After a restart: the external jobs still Pending died with the process.
    pub(crate) fn fail_external_jobs(&mut self) {
        let now = self.now;
        for j in self
            .jobs
            .iter_mut()
            .filter(|j| j.status == JobStatus::Pending && j.saga_free())
        {
            j.status = JobStatus::Failed;
            j.error_code = Some(530);
            j.error = Some("the management server restarted before the job finished; run it again".into());
            j.completed = Some(now);
        }
    }
}
