"""promotions: bargains (砍价): a customer's bargain, friends' assists cutting the price towards the floor — logic."""
