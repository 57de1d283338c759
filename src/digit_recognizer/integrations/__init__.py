"""Optional integrations: scheduled runs made of tasks (Airflow and others) and MLflow tracking."""
