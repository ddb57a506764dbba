"""payments-dr: multi-region disaster recovery for a payment API on AWS."""
