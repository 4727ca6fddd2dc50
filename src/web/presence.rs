//! Who is connected: open authenticated sessions per till (operator page) and per role
//! (`/metrics`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::Role;

/// Open sessions per till name and per role; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Presence {
    counts: Arc<Mutex<Counts>>,
}

#[derive(Debug, Default)]
struct Counts {
    tills: HashMap<String, usize>,
    /// Per role, in [`Role::ALL`]'s order.
    roles: [usize; Role::ALL.len()],
}

impl Counts {
    fn role(&mut self, role: Role) -> &mut usize {
        // `Role::ALL` lists the roles in their declaration order: `role as usize` indexes it.
        &mut self.roles[role as usize]
    }
}

/// One open session; dropping it counts the session out.
#[derive(Debug)]
pub struct Seat {
    presence: Presence,
    till: String,
    role: Role,
}

impl Presence {
    /// Counts a session of `till` (whose role is `role`) in until the returned seat drops.
    pub fn join(&self, till: &str, role: Role) -> Seat {
        let mut counts = self.lock();
        *counts.tills.entry(till.to_owned()).or_default() += 1;
        *counts.role(role) += 1;
        Seat {
            presence: self.clone(),
            till: till.to_owned(),
            role,
        }
    }

    /// Open sessions of `till`.
    pub fn sessions(&self, till: &str) -> usize {
        self.lock().tills.get(till).copied().unwrap_or(0)
    }

    /// Open sessions per role, every role listed.
    pub fn by_role(&self) -> [(Role, usize); Role::ALL.len()] {
        let counts = self.lock();
        Role::ALL.map(|role| (role, counts.roles[role as usize]))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut counts = self.presence.lock();
        if let Some(count) = counts.tills.get_mut(&self.till) {
            *count = count.saturating_sub(1);
        }
        let role = counts.role(self.role);
        *role = role.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seats_count_in_and_out_per_till_and_role() {
        let presence = Presence::default();
        let a = presence.join("till-1", Role::Cashier);
        let b = presence.join("till-1", Role::Cashier);
        let screen = presence.join("screen", Role::Display);
        let office = presence.join("office", Role::Operator);
        assert_eq!(presence.sessions("till-1"), 2);
        assert_eq!(
            presence.by_role(),
            [(Role::Cashier, 2), (Role::Display, 1), (Role::Operator, 1)]
        );
        drop(a);
        drop(b);
        drop(screen);
        drop(office);
        assert_eq!(presence.sessions("till-1"), 0);
        assert_eq!(
            presence.by_role(),
            [(Role::Cashier, 0), (Role::Display, 0), (Role::Operator, 0)]
        );
    }
}
