"""The run viewer and the charts it shares with the static HTML report."""
