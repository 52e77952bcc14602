"""`iwctl verify`: a reliability check of a deployment, run from the user's own machine."""
