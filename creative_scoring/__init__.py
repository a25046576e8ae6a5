"""Creative-scoring serving: code shared by the CDK app, the local endpoint and the ops CLI."""
