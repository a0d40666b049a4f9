from syndicate.cli import main

main()
