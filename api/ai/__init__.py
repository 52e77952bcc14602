"""AI endpoints: chat with the configured model and turn descriptions into workflows."""
