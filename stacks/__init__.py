"""The CDK app: one stack per environment, each wiring the components in stacks/components/."""
