//! SIGTERM, SIGINT, SIGHUP and SIGQUIT around delivery. Before delivery starts, the process
//! exits at once because nothing was delivered. During delivery, the delivery stops at its
//! next step and undoes everything it did. After delivery, the signal is ignored because the
//! run has finished.
//!
//! The signal listener (in the command-line front end) calls [`Interrupt::on_signal`];
//! delivery calls [`Interrupt::begin`], [`Interrupt::check`] between steps and
//! [`Interrupt::finish`]. One lock orders both sides, so a signal is either seen by delivery
//! or handled before delivery starts, never lost in between.

use std::sync::{Mutex, MutexGuard};

/// A termination signal the broker handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Terminate,
    Interrupt,
    /// SIGHUP, which a closed terminal or ssh session sends to the processes it started.
    Hangup,
    Quit,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Terminate => "SIGTERM",
            Signal::Interrupt => "SIGINT",
            Signal::Hangup => "SIGHUP",
            Signal::Quit => "SIGQUIT",
        }
    }

    /// Exit code after this signal: 128 + the signal number (143 for SIGTERM, 130 for
    /// SIGINT, 129 for SIGHUP, 131 for SIGQUIT), the status a shell reports for a process
    /// the signal ended. Supervisors (systemd, container runtimes, shells) read it as a
    /// termination, not as a denial or an upstream failure that a retry could fix.
    pub fn exit_code(self) -> i32 {
        match self {
            Signal::Terminate => 128 + 15,
            Signal::Interrupt => 128 + 2,
            Signal::Hangup => 128 + 1,
            Signal::Quit => 128 + 3,
        }
    }
}

/// Action the signal listener takes for a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalAction {
    /// Delivery has not started, so nothing is on disk: exit now with the signal's code.
    ExitNow,
    /// Delivery is running and stops at its next step, undoing what it did. The run then
    /// ends with [`super::DeliverError::Interrupted`].
    DeliveryStops,
    /// Delivery has already finished, or an earlier signal is being handled.
    Ignore,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Phase {
    #[default]
    BeforeDelivery,
    Delivering {
        signal: Option<Signal>,
    },
    Finished,
}

/// Lock on the delivery state, held by the signal listener while it acts on a signal.
pub struct SignalGuard<'a> {
    _phase: MutexGuard<'a, Phase>,
}

/// Delivery state shared between the signal listener and the delivery code.
#[derive(Debug, Default)]
pub struct Interrupt {
    phase: Mutex<Phase>,
    /// Unit tests only: the step (a call of `check` or `finish`, from 0) at which a signal
    /// is recorded as if it had just arrived.
    #[cfg(test)]
    signal_at_step: Mutex<Option<(usize, Signal)>>,
}

static PROCESS: Interrupt = Interrupt {
    phase: Mutex::new(Phase::BeforeDelivery),
    #[cfg(test)]
    signal_at_step: Mutex::new(None),
};

/// Returns the state the command-line front end and [`crate::release::run`] share.
/// Signals reach the whole process, so there is one state per process.
///
/// NOTE: the state models one delivery at a time, which is what the command line runs. A
/// library caller that runs two deliveries at once in one process should not rely on it.
pub fn process_interrupt() -> &'static Interrupt {
    &PROCESS
}

impl Interrupt {
    fn lock(&self) -> MutexGuard<'_, Phase> {
        // A panic while the lock is held cannot leave the phase half-written (it is one
        // Copy value), so a poisoned lock is still usable.
        self.phase
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records a signal and returns what the listener must do.
    ///
    /// With [`SignalAction::ExitNow`] the caller should exit without releasing the
    /// returned guard, so that delivery cannot start between this decision and the exit.
    pub fn on_signal(&self, signal: Signal) -> (SignalAction, SignalGuard<'_>) {
        let mut phase = self.lock();
        let action = match *phase {
            Phase::BeforeDelivery => SignalAction::ExitNow,
            Phase::Delivering { signal: None } => {
                *phase = Phase::Delivering {
                    signal: Some(signal),
                };
                SignalAction::DeliveryStops
            }
            Phase::Delivering { signal: Some(_) } | Phase::Finished => SignalAction::Ignore,
        };
        (action, SignalGuard { _phase: phase })
    }

    /// Marks the start of delivery. From now on a signal no longer ends the process but
    /// makes [`Interrupt::check`] fail.
    pub fn begin(&self) {
        *self.lock() = Phase::Delivering { signal: None };
    }

    /// Makes step `step` (a call of `check` or `finish`, from 0) behave as if `signal` had
    /// arrived just before it.
    #[cfg(test)]
    pub(crate) fn signal_at_step(&self, step: usize, signal: Signal) {
        *self.signal_at_step.lock().unwrap() = Some((step, signal));
    }

    #[cfg(test)]
    fn count_step(&self) {
        let mut planned = self.signal_at_step.lock().unwrap();
        match *planned {
            Some((0, signal)) => {
                *planned = None;
                drop(planned);
                drop(self.on_signal(signal));
            }
            Some((step, signal)) => *planned = Some((step - 1, signal)),
            None => {}
        }
    }

    #[cfg(not(test))]
    fn count_step(&self) {}

    /// Returns the signal received since [`Interrupt::begin`], if any.
    pub fn received(&self) -> Option<Signal> {
        match *self.lock() {
            Phase::Delivering { signal } => signal,
            Phase::BeforeDelivery | Phase::Finished => None,
        }
    }

    /// Fails with the signal received since [`Interrupt::begin`], so the caller undoes its
    /// work and stops.
    pub fn check(&self) -> Result<(), Signal> {
        self.count_step();
        match self.received() {
            Some(signal) => Err(signal),
            None => Ok(()),
        }
    }

    /// Marks delivery as complete unless a signal came first, in which case the caller must
    /// undo the delivery. Signals after this point are ignored.
    pub fn finish(&self) -> Result<(), Signal> {
        self.count_step();
        let mut phase = self.lock();
        if let Phase::Delivering {
            signal: Some(signal),
        } = *phase
        {
            return Err(signal);
        }
        *phase = Phase::Finished;
        Ok(())
    }

    /// Marks delivery as ended after a failure, so that later signals are ignored while the
    /// failure is reported.
    pub fn abandon(&self) {
        *self.lock() = Phase::Finished;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_before_delivery_exits_now() {
        let interrupt = Interrupt::default();
        let (action, _guard) = interrupt.on_signal(Signal::Terminate);
        assert_eq!(action, SignalAction::ExitNow);
    }

    #[test]
    fn signal_during_delivery_fails_next_check() {
        let interrupt = Interrupt::default();
        interrupt.begin();
        assert_eq!(interrupt.check(), Ok(()));

        let (action, guard) = interrupt.on_signal(Signal::Interrupt);
        drop(guard);

        assert_eq!(action, SignalAction::DeliveryStops);
        assert_eq!(interrupt.check(), Err(Signal::Interrupt));
        assert_eq!(interrupt.finish(), Err(Signal::Interrupt));
    }

    #[test]
    fn second_signal_during_delivery_is_ignored() {
        let interrupt = Interrupt::default();
        interrupt.begin();
        drop(interrupt.on_signal(Signal::Interrupt));

        let (action, _guard) = interrupt.on_signal(Signal::Terminate);

        assert_eq!(action, SignalAction::Ignore);
    }

    #[test]
    fn signal_after_finish_is_ignored() {
        let interrupt = Interrupt::default();
        interrupt.begin();
        assert_eq!(interrupt.finish(), Ok(()));

        let (action, _guard) = interrupt.on_signal(Signal::Terminate);

        assert_eq!(action, SignalAction::Ignore);
    }

    #[test]
    fn exit_codes_follow_shell_convention() {
        assert_eq!(Signal::Terminate.exit_code(), 143);
        assert_eq!(Signal::Interrupt.exit_code(), 130);
        assert_eq!(Signal::Hangup.exit_code(), 129);
        assert_eq!(Signal::Quit.exit_code(), 131);
    }
}
