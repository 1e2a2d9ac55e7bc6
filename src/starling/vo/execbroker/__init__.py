"""The IVOA ExecutionBroker: users ask to run their own processing, get offers from real capacity."""
