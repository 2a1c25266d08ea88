"""What a run gives: its report and the statistics behind it, exports, cards, the hub, model evaluation."""
