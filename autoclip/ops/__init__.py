"""Operations on a Prefect server that set up the platform around the flow (automations, limits)."""
