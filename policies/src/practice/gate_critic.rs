//! The actor's side of the gate's risk critic trained during practice: the
//! critic the gate holds, whether it may act in this episode (the A/B arms
//! of `safety.risk_critic.online.alternate_episodes`), and what it did.

use rrl_types::PracticeTask;

use super::{CriticRole, PublishedCritic};

pub(super) struct GateCritic {
    alternate: bool,
    /// The critic the gate took last, kept to switch its arm at episode starts.
    held: Option<PublishedCritic>,
    /// This episode is the A/B test's other arm: a passing critic shadows.
    withheld: bool,
    /// The most the critic did in this episode so far.
    episode_role: CriticRole,
}

impl GateCritic {
    pub(super) fn new(alternate: bool) -> GateCritic {
        GateCritic { alternate, held: None, withheld: false, episode_role: CriticRole::None }
    }

    /// Hands a newly published critic to the gate: acting if it passed its
    /// check and this episode is not withheld. On refusal the gate keeps
    /// the one it had.
    pub(super) fn take(&mut self, critic: PublishedCritic, env: &mut impl PracticeTask) -> Result<&PublishedCritic, String> {
        env.offer_risk_critic(&critic.layers, critic.acting && !self.withheld)?;
        let held = self.held.insert(critic);
        let now = role_of(Some(held), self.withheld);
        self.episode_role = self.episode_role.max(now);
        Ok(held)
    }

    /// Episode `number` starts: under the A/B test the odd ones withhold a
    /// passing critic (the gate is offered it again in its new arm).
    pub(super) fn start_episode(&mut self, number: u64, env: &mut impl PracticeTask) -> Result<(), String> {
        let withheld = self.alternate && number % 2 == 1;
        let offered = match self.held.as_ref().filter(|c| c.acting && withheld != self.withheld) {
            Some(critic) => env.offer_risk_critic(&critic.layers, !withheld),
            None => Ok(()),
        };
        // Refused: the gate keeps the critic in its last arm, and so does the episode's role.
        if offered.is_ok() {
            self.withheld = withheld;
        }
        self.episode_role = self.role_now();
        offered
    }

    /// What the critic did in the episode.
    pub(super) fn episode_role(&self) -> CriticRole {
        self.episode_role
    }

    /// What the critic does now.
    pub(super) fn role_now(&self) -> CriticRole {
        role_of(self.held.as_ref(), self.withheld)
    }
}

fn role_of(held: Option<&PublishedCritic>, withheld: bool) -> CriticRole {
    match held {
        None => CriticRole::None,
        Some(c) if !c.acting => CriticRole::Shadow,
        Some(_) if withheld => CriticRole::Withheld,
        Some(_) => CriticRole::Acting,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task that only remembers what its gate was offered (and refuses
    /// every offer once `refuse` is set).
    struct Offers(Vec<bool>, bool);

    impl rrl_types::Environment for Offers {
        type Error = std::convert::Infallible;
        fn observation_size(&self) -> usize {
            1
        }
        fn action_size(&self) -> usize {
            1
        }
        fn action_low(&self) -> &[f64] {
            &[-1.0]
        }
        fn action_high(&self) -> &[f64] {
            &[1.0]
        }
        fn observation(&self) -> &[f64] {
            &[0.0]
        }
        fn reset(&mut self, _seed: u64) -> &[f64] {
            &[0.0]
        }
        fn reset_next(&mut self) -> &[f64] {
            &[0.0]
        }
        fn step(&mut self, _action: &[f64]) -> Result<rrl_types::Step, Self::Error> {
            unreachable!("never stepped")
        }
    }

    impl PracticeTask for Offers {
        fn offer_risk_critic(&mut self, _layers: &[(Vec<Vec<f32>>, Vec<f32>)], acting: bool) -> Result<(), String> {
            if self.1 {
                return Err("refused".into());
            }
            self.0.push(acting);
            Ok(())
        }
    }

    fn critic(acting: bool) -> PublishedCritic {
        PublishedCritic { update: 0, critic_updates: 0, layers: Vec::new(), acting, precision: None, recall: None, onsets: 0, anticipated_onsets: 0 }
    }

    /// The A/B arms: a passing critic acts in even episodes and is withheld
    /// in odd ones, switched at each episode's start; one that has not
    /// passed its check shadows in both arms.
    #[test]
    fn alternate_episodes_withhold_a_passing_critic_in_odd_episodes_only() {
        let mut env = Offers(Vec::new(), false);
        let mut gate = GateCritic::new(true);
        gate.start_episode(0, &mut env).unwrap();
        assert_eq!(gate.episode_role(), CriticRole::None);
        gate.take(critic(false), &mut env).unwrap();
        assert_eq!((gate.episode_role(), env.0.as_slice()), (CriticRole::Shadow, &[false][..]));
        gate.start_episode(1, &mut env).unwrap();
        assert_eq!(env.0.len(), 1, "a shadowing critic is not offered again");
        gate.take(critic(true), &mut env).unwrap();
        assert_eq!((gate.episode_role(), env.0[1]), (CriticRole::Withheld, false), "odd episodes withhold a passing critic");
        gate.start_episode(2, &mut env).unwrap();
        assert_eq!((gate.episode_role(), env.0[2]), (CriticRole::Acting, true), "the even episode's start lets it act");
        gate.start_episode(3, &mut env).unwrap();
        assert_eq!((gate.episode_role(), env.0[3]), (CriticRole::Withheld, false));
        // A publication that fails its check mid-episode: the episode keeps the most it did.
        gate.start_episode(4, &mut env).unwrap();
        gate.take(critic(false), &mut env).unwrap();
        assert_eq!((gate.episode_role(), env.0[5]), (CriticRole::Acting, false));
        gate.start_episode(5, &mut env).unwrap();
        assert_eq!((gate.episode_role(), env.0.len()), (CriticRole::Shadow, 6));
        // A gate that refuses the switch keeps the critic in its last arm: so does the role.
        gate.take(critic(true), &mut env).unwrap();
        env.1 = true;
        assert!(gate.start_episode(6, &mut env).is_err());
        assert_eq!(gate.episode_role(), CriticRole::Withheld, "the gate still holds it withheld");
        env.1 = false;
        gate.start_episode(7, &mut env).unwrap();
        assert_eq!((gate.episode_role(), env.0.len()), (CriticRole::Withheld, 7), "already withheld: nothing to switch");
    }

    #[test]
    fn without_the_ab_test_a_passing_critic_acts_in_every_episode() {
        let mut env = Offers(Vec::new(), false);
        let mut gate = GateCritic::new(false);
        gate.start_episode(0, &mut env).unwrap();
        gate.take(critic(true), &mut env).unwrap();
        for number in 1..4 {
            gate.start_episode(number, &mut env).unwrap();
            assert_eq!(gate.episode_role(), CriticRole::Acting);
        }
        assert_eq!(env.0, vec![true], "offered once, never switched");
    }
}
