"""Generated from proto/socialcrm/v1: do not edit."""
