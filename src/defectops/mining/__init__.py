"""Mining: one streaming pass over git history into typed commit records and the Kamei change metrics."""
