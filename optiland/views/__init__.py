"""What planners read: township reports, ecological-space zones, the transition's files and plots."""
