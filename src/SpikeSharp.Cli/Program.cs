Console.WriteLine("spikesharp");
