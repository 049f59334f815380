from netatlas.cli import main

main()
