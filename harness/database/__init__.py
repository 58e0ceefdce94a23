"""Read-only looks into a target's database, where its config allows: the tenancy catalogue (C2) and the
traces a refused request must not leave."""
